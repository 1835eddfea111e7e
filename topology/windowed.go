package topology

import (
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/windows"
)

// Windowed is one window result: the aggregate of one key in one window.
// Final is false for an early (updating) result.
type Windowed[A any] struct {
	Window windows.Window
	Value  A
	Final  bool
}

// LateTopic is the default late-data side output of an application.
func LateTopic(appID string) string { return appID + "-late" }

// Headers on records sent to the late-data side output, besides the
// record's own headers.
const (
	HeaderLateOperator    = "weir.late.operator"
	HeaderLateWindows     = "weir.late.windows" // "start-end" pairs, comma-separated
	HeaderLateWatermark   = "weir.late.watermark"
	HeaderSourceTopic     = "weir.source.topic"
	HeaderSourcePartition = "weir.source.partition"
	HeaderSourceOffset    = "weir.source.offset"
)

// WithWatermarks sets the watermark strategy of a Source (default
// windows.Monotonous(): the watermark is the largest event time seen).
func WithWatermarks(s windows.Strategy) Opt {
	return sourceOpt("WithWatermarks", func(c *opCfg) { c.watermarks = &s })
}

// Aggregate folds a keyed stream into windows (spec.Assigner: tumbling,
// hopping, session or count) and emits one result per key and window: by
// default once, final, when the task watermark passes the window's end plus
// spec.Grace; with windows.EmitEarly also updates at every checkpoint.
// Records partition by their current key first (through a repartition topic
// if the key changed). A record whose every window is already closed goes
// to the late-data side output "<app>-late" with headers naming its
// windows and the watermark it met; it is never dropped silently. The late
// record is the record as the operator's task read it (after a
// repartition, the repartition topic's record: the value is what the
// operators before it made of the input), with weir.source.* naming where
// the task read it and weir.origin.* the input record it came from.
//
// Results carry the headers weir.window.start, weir.window.end, weir.final
// and weir.result.id, and the timestamp End-1 (the window's last instant).
// Window state lives in the store "<operator>-store", so it is
// checkpointed, changelogged and restored like all state, and queryable:
// the engine's GET /state/{store}/{key} returns the key's windows with
// state (windows.QueryKey).
func Aggregate[K, V, A any](s Stream[K, V], spec windows.Spec, agg windows.Aggregation[V, A], acc serde.Serde[A], opts ...Opt) Stream[K, Windowed[A]] {
	cfg := applyOpts("aggregate", opts)
	s.t.deriveName("aggregate", &cfg)
	if err := spec.Assigner.Err(); err != nil {
		s.t.errorf("aggregate %q: %v", cfg.name, err)
	} else if err := spec.Validate(); err != nil {
		s.t.errorf("aggregate %q: %v", cfg.name, err)
	}
	if s.ks == nil {
		s.t.errorf("aggregate %q: the stream has no key serde: use WithSerdes before Aggregate", cfg.name)
	}
	if acc == nil {
		s.t.errorf("aggregate %q: an accumulator serde is required", cfg.name)
	}
	storeName := cfg.name + "-store"
	cfg.stores = append(cfg.stores, storeName)
	cfg.rekeyed = s.rek
	in := keyed(s, cfg.name)
	ks := in.ks
	if ks != nil && acc != nil {
		cfg.queries = map[string]StoreCodec{storeName: windowCodec(spec, ks, acc, agg)}
	}
	n := in.t.add("aggregate", cfg, in.n)
	n.build = func(tb *taskBuilder) (any, error) {
		next, err := downstream[K, Windowed[A]](tb, n)
		if err != nil {
			return nil, err
		}
		st, err := tb.ctx.Store(storeName)
		if err != nil {
			return nil, err
		}
		op, err := windows.NewOperator(spec, st, acc, agg)
		if err != nil {
			return nil, fmt.Errorf("topology: aggregate %q: %w", n.name, err)
		}
		late := tb.sink(LateTopic(tb.plan.AppID))
		emit := func(res windows.Result[A]) error {
			var whBuf [4]windows.Header
			wh := windows.AppendHeaders(whBuf[:0], tb.plan.AppID, n.name, res.Key, res.Window, res.Final)
			h := make([]kgo.RecordHeader, len(wh))
			for i, x := range wh {
				h[i] = kgo.RecordHeader{Key: x.Key, Value: x.Value}
			}
			k, err := ks.Decode(res.Key)
			if err == nil {
				err = next(tb.ctx, Record[K, Windowed[A]]{Key: k, Value: Windowed[A]{Window: res.Window, Value: res.Value, Final: res.Final}, Timestamp: res.Window.End - 1, Headers: h})
			} else {
				err = &OperatorError{Operator: n.name, Err: fmt.Errorf("stored key: %w", err)}
			}
			if err == nil || !isRecordError(err) {
				return err
			}
			// The result itself is the bad record, not the input
			// record that moved the watermark.
			v, aerr := acc.Encode(res.Value)
			if aerr != nil {
				v = nil
			}
			rec := &kgo.Record{
				Key: res.Key, Value: v, Partition: tb.ctx.env.Task.Partition, Offset: -1,
				Timestamp: time.UnixMilli(res.Window.End - 1),
				Headers:   append(h[:len(h):len(h)], kgo.RecordHeader{Key: HeaderEmitOperator, Value: []byte(n.name)}),
			}
			return &EmitError{Record: rec, Err: err}
		}
		tb.advancers = append(tb.advancers, func(wm int64) error { return op.Advance(wm, emit) })
		return procFn[K, V](func(ctx *Context, r Record[K, V]) error {
			kb, err := ks.Encode(r.Key)
			if err != nil {
				return &OperatorError{Operator: n.name, Err: fmt.Errorf("encode key: %w", err)}
			}
			lt, err := op.Add(kb, r.Value, r.Timestamp, ctx.watermark)
			if err != nil {
				return &OperatorError{Operator: n.name, Err: err}
			}
			if !lt.Late {
				return nil
			}
			if ctx.env.OnLate != nil {
				ctx.env.OnLate(n.name)
			}
			return sendLate(ctx, late, n.name, lt)
		}), nil
	}
	return derive[K, V, K, Windowed[A]](in, n, ks, nil, false)
}

// sendLate produces the record being processed, as it was read by the
// window operator's task (after a repartition: the repartition topic's
// record, with what the operators before the repartition made of its
// value), to the late-data topic. Its headers are its own (after a
// repartition ending with HeaderOrigin), the late headers, the source
// headers (where the task read it) and HeaderOriginTopic,
// HeaderOriginPartition and HeaderOriginOffset naming the input record it
// came from: itself if the task read it from an input topic. (A
// HeaderOrigin that does not parse, which weir never writes, leaves the
// origin headers naming the record as read.)
func sendLate(ctx *Context, late *sink, op string, lt windows.Late) error {
	src := ctx.src
	var ws []byte
	for i, w := range lt.Windows {
		if i > 0 {
			ws = append(ws, ',')
		}
		ws = strconv.AppendInt(ws, w.Start, 10)
		ws = append(ws, '-')
		ws = strconv.AppendInt(ws, w.End, 10)
	}
	h := make([]kgo.RecordHeader, 0, len(src.Headers)+9)
	h = append(h, src.Headers...)
	h = append(h,
		kgo.RecordHeader{Key: HeaderLateOperator, Value: []byte(op)},
		kgo.RecordHeader{Key: HeaderLateWindows, Value: ws},
		kgo.RecordHeader{Key: HeaderLateWatermark, Value: strconv.AppendInt(nil, lt.Watermark, 10)},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(src.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(src.Partition), 10)},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, src.Offset, 10)},
	)
	topic, partition, offset := src.Topic, src.Partition, src.Offset // read from an input topic: its own origin
	if ctx.origin != nil {
		if t, p, o, err := ParseOrigin(ctx.origin); err == nil {
			topic, partition, offset = t, p, o
		}
	}
	h = appendOriginHeaders(h, topic, partition, offset)
	rec := &kgo.Record{Topic: late.topic, Partition: 0, Key: src.Key, Value: src.Value, Headers: h, Timestamp: src.Timestamp}
	return late.env.Produce(rec)
}
