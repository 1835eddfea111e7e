package topology

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/windows"
)

// procFn is the runtime form of every non-source operator: it takes one
// record of the operator's input types. Operators of one sub-topology are
// fused: each calls the next directly, on the task's goroutine.
type procFn[K, V any] func(ctx *Context, r Record[K, V]) error

// sourceFn decodes one Kafka record and pushes it through the sub-topology.
type sourceFn func(ctx *Context, rec *kgo.Record) error

// Source reads topic with the given key and value serdes. The record's
// event time is the Kafka timestamp unless WithTimestamps gives an
// extractor. A record that fails to decode is handed to the engine's error
// policy (dead-letter topic by default).
func Source[K, V any](t *Topology, topic string, ks serde.Serde[K], vs serde.Serde[V], opts ...Opt) Stream[K, V] {
	cfg := applyOpts(KindSource, opts)
	if cfg.name == "" {
		cfg.name = "source-" + topic
	}
	n := t.add(KindSource, cfg)
	n.topic = topic
	n.watermarks = cfg.watermarks
	if topic == "" {
		t.errorf("source %q: empty topic", n.name)
	}
	if ks == nil || vs == nil {
		t.errorf("source %q: key and value serdes are required", n.name)
	}
	var extract TimestampExtractor[K, V]
	if cfg.timestamp != nil {
		fn, ok := cfg.timestamp.(TimestampExtractor[K, V])
		if !ok {
			t.errorf("source %q: WithTimestamps has types %T, want TimestampExtractor[%T, %T]", n.name, cfg.timestamp, *new(K), *new(V))
		}
		extract = fn
	}
	n.build = func(tb *taskBuilder) (any, error) {
		next, err := downstream[K, V](tb, n)
		if err != nil {
			return nil, err
		}
		pk := windows.PartitionKey{Topic: topic, Partition: tb.ctx.env.Task.Partition}
		tb.tracker.Add(pk)
		return sourceFn(func(ctx *Context, rec *kgo.Record) error {
			k, err := ks.Decode(rec.Key)
			if err != nil {
				return &SourceError{Operator: n.name, Err: fmt.Errorf("key: %w", err)}
			}
			v, err := vs.Decode(rec.Value)
			if err != nil {
				return &SourceError{Operator: n.name, Err: fmt.Errorf("value: %w", err)}
			}
			ts := rec.Timestamp.UnixMilli()
			if extract != nil {
				if ts, err = extract(k, v, ts); err != nil {
					return &SourceError{Operator: n.name, Err: fmt.Errorf("timestamp: %w", err)}
				}
			}
			ctx.tracker.Observe(pk, ts, ctx.now)
			return next(ctx, Record[K, V]{Key: k, Value: v, Timestamp: ts, Headers: rec.Headers})
		}), nil
	}
	return Stream[K, V]{t: t, n: n, ks: ks, vs: vs}
}

// WithSerdes attaches serdes to a stream whose types changed (after Map or
// FlatMap), so that it can go to a sink or through a repartition topic.
func WithSerdes[K, V any](s Stream[K, V], ks serde.Serde[K], vs serde.Serde[V]) Stream[K, V] {
	s.ks, s.vs = ks, vs
	return s
}

// Map turns each record into one record of new types. The key may change,
// so a keyed operation after Map repartitions.
func Map[K, V, K2, V2 any](s Stream[K, V], fn func(k K, v V) (K2, V2, error), opts ...Opt) Stream[K2, V2] {
	n := s.t.add(KindMap, applyOpts(KindMap, opts), s.n)
	n.build = func(tb *taskBuilder) (any, error) {
		next, err := downstream[K2, V2](tb, n)
		if err != nil {
			return nil, err
		}
		return procFn[K, V](func(ctx *Context, r Record[K, V]) error {
			k, v, err := fn(r.Key, r.Value)
			if err != nil {
				return &OperatorError{Operator: n.name, Err: err}
			}
			return next(ctx, Record[K2, V2]{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
		}), nil
	}
	return derive[K, V, K2, V2](s, n, nil, nil, true)
}

// MapValues changes each record's value and keeps its key, so no
// repartition follows.
func MapValues[K, V, V2 any](s Stream[K, V], fn func(k K, v V) (V2, error), opts ...Opt) Stream[K, V2] {
	n := s.t.add(KindMapValues, applyOpts(KindMapValues, opts), s.n)
	n.build = func(tb *taskBuilder) (any, error) {
		next, err := downstream[K, V2](tb, n)
		if err != nil {
			return nil, err
		}
		return procFn[K, V](func(ctx *Context, r Record[K, V]) error {
			v, err := fn(r.Key, r.Value)
			if err != nil {
				return &OperatorError{Operator: n.name, Err: err}
			}
			return next(ctx, Record[K, V2]{Key: r.Key, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
		}), nil
	}
	return derive[K, V, K, V2](s, n, s.ks, nil, s.rek)
}

// Filter keeps the records for which keep returns true.
func Filter[K, V any](s Stream[K, V], keep func(k K, v V) bool, opts ...Opt) Stream[K, V] {
	n := s.t.add(KindFilter, applyOpts(KindFilter, opts), s.n)
	n.build = func(tb *taskBuilder) (any, error) {
		next, err := downstream[K, V](tb, n)
		if err != nil {
			return nil, err
		}
		return procFn[K, V](func(ctx *Context, r Record[K, V]) error {
			if !keep(r.Key, r.Value) {
				return nil
			}
			return next(ctx, r)
		}), nil
	}
	return derive[K, V, K, V](s, n, s.ks, s.vs, s.rek)
}

// FlatMap turns each record into zero or more records of new types.
func FlatMap[K, V, K2, V2 any](s Stream[K, V], fn func(k K, v V, emit func(K2, V2)) error, opts ...Opt) Stream[K2, V2] {
	n := s.t.add(KindFlatMap, applyOpts(KindFlatMap, opts), s.n)
	n.build = func(tb *taskBuilder) (any, error) {
		next, err := downstream[K2, V2](tb, n)
		if err != nil {
			return nil, err
		}
		// One emit closure per task: it pushes each output downstream
		// immediately and remembers the first downstream error.
		var (
			cur     Record[K, V]
			curCtx  *Context
			nextErr error
		)
		emit := func(k K2, v V2) {
			if nextErr == nil {
				nextErr = next(curCtx, Record[K2, V2]{Key: k, Value: v, Timestamp: cur.Timestamp, Headers: cur.Headers})
			}
		}
		return procFn[K, V](func(ctx *Context, r Record[K, V]) error {
			cur, curCtx, nextErr = r, ctx, nil
			if err := fn(r.Key, r.Value, emit); err != nil {
				return &OperatorError{Operator: n.name, Err: err}
			}
			return nextErr
		}), nil
	}
	return derive[K, V, K2, V2](s, n, nil, nil, true)
}

// Peek calls fn for each record and passes the record on unchanged.
func Peek[K, V any](s Stream[K, V], fn func(k K, v V), opts ...Opt) Stream[K, V] {
	n := s.t.add(KindPeek, applyOpts(KindPeek, opts), s.n)
	n.build = func(tb *taskBuilder) (any, error) {
		next, err := downstream[K, V](tb, n)
		if err != nil {
			return nil, err
		}
		return procFn[K, V](func(ctx *Context, r Record[K, V]) error {
			fn(r.Key, r.Value)
			return next(ctx, r)
		}), nil
	}
	return derive[K, V, K, V](s, n, s.ks, s.vs, s.rek)
}

// Merge combines streams of the same types into one. Streams from
// different sources of one Merge share tasks, so their topics must have the
// same partition count.
func Merge[K, V any](first Stream[K, V], rest []Stream[K, V], opts ...Opt) Stream[K, V] {
	parents := []*node{first.n}
	rek := first.rek
	for _, s := range rest {
		if s.t != first.t {
			first.t.errorf("Merge: stream %q belongs to another topology", s.n.name)
			s.t.errorf("Merge: stream %q was merged into another topology", s.n.name)
			continue
		}
		parents = append(parents, s.n)
		rek = rek || s.rek
	}
	n := first.t.add(KindMerge, applyOpts(KindMerge, opts), parents...)
	n.build = func(tb *taskBuilder) (any, error) {
		next, err := downstream[K, V](tb, n)
		if err != nil {
			return nil, err
		}
		return procFn[K, V](next), nil
	}
	return derive[K, V, K, V](first, n, first.ks, first.vs, rek)
}

// Branch splits a stream: each record goes to the first branch whose
// predicate matches, and to the extra last stream (the default branch) when
// none does. It returns len(preds)+1 streams.
func Branch[K, V any](s Stream[K, V], preds []func(k K, v V) bool, opts ...Opt) []Stream[K, V] {
	n := s.t.add(KindBranch, applyOpts(KindBranch, opts), s.n)
	outs := make([]Stream[K, V], len(preds)+1)
	outNodes := make([]*node, len(preds)+1)
	for i := range outs {
		on := s.t.add(KindPeek, opCfg{name: fmt.Sprintf("%s-%d", n.name, i)}, n)
		on.kind = "branch-out"
		outNodes[i] = on
		on.build = func(tb *taskBuilder) (any, error) {
			next, err := downstream[K, V](tb, on)
			if err != nil {
				return nil, err
			}
			return procFn[K, V](next), nil
		}
		outs[i] = derive[K, V, K, V](s, on, s.ks, s.vs, s.rek)
	}
	n.build = func(tb *taskBuilder) (any, error) {
		fns := make([]procFn[K, V], len(outNodes))
		for i, on := range outNodes {
			f, err := buildAs[K, V](tb, on)
			if err != nil {
				return nil, err
			}
			fns[i] = f
		}
		return procFn[K, V](func(ctx *Context, r Record[K, V]) error {
			for i, p := range preds {
				if p(r.Key, r.Value) {
					return fns[i](ctx, r)
				}
			}
			return fns[len(preds)](ctx, r)
		}), nil
	}
	return outs
}

// SelectKey gives each record a new key computed from it. A keyed operation
// after SelectKey reads through a repartition topic, so the new key needs a
// serde.
func SelectKey[K, V, K2 any](s Stream[K, V], fn func(k K, v V) (K2, error), ks serde.Serde[K2], opts ...Opt) Stream[K2, V] {
	n := s.t.add(KindSelectKey, applyOpts(KindSelectKey, opts), s.n)
	n.build = func(tb *taskBuilder) (any, error) {
		next, err := downstream[K2, V](tb, n)
		if err != nil {
			return nil, err
		}
		return procFn[K, V](func(ctx *Context, r Record[K, V]) error {
			k, err := fn(r.Key, r.Value)
			if err != nil {
				return &OperatorError{Operator: n.name, Err: err}
			}
			return next(ctx, Record[K2, V]{Key: k, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers})
		}), nil
	}
	return derive[K, V, K2, V](s, n, ks, s.vs, true)
}

// Repartition writes the stream through the internal topic
// "<app>-<name>-repartition", partitioned by key, and reads it back in a new
// sub-topology. Keyed operations call it for you after a key change.
func Repartition[K, V any](s Stream[K, V], opts ...Opt) Stream[K, V] {
	cfg := applyOpts("repartition", opts)
	s.t.deriveName("repartition", &cfg)
	s.t.rejectOpts("repartition", cfg.name, cfg)
	if cfg.derived {
		s.t.unnamed("repartition", cfg.name, nil, true)
	}
	return repartition(s, cfg.name)
}

func repartition[K, V any](s Stream[K, V], name string) Stream[K, V] {
	if s.ks == nil || s.vs == nil {
		s.t.errorf("operator %q needs to repartition %q by key, but the stream has no serdes: use WithSerdes before it", name, s.n.name)
	}
	ks, vs := s.ks, s.vs
	topic := name + "-repartition"
	sink := s.t.add(KindRepartitionSink, opCfg{name: name + "-sink"}, s.n)
	sink.topic, sink.internal = topic, true
	sink.build = func(tb *taskBuilder) (any, error) {
		out := tb.sink(tb.plan.topicName(sink))
		var ow originWriter
		return procFn[K, V](func(ctx *Context, r Record[K, V]) error {
			r.Headers = ow.withOrigin(ctx, r.Headers)
			return send(ctx, out, ks, vs, r, sink.name)
		}), nil
	}
	src := s.t.add(KindRepartitionSrc, opCfg{name: name + "-source"})
	src.topic, src.internal = topic, true
	src.build = func(tb *taskBuilder) (any, error) {
		next, err := downstream[K, V](tb, src)
		if err != nil {
			return nil, err
		}
		topic := tb.plan.topicName(src)
		pk := windows.PartitionKey{Topic: topic, Partition: tb.ctx.env.Task.Partition}
		upstream, err := tb.ctx.env.Partitions(topic) // one partition per upstream task
		if err != nil {
			return nil, fmt.Errorf("topology: repartition %q: %w", topic, err)
		}
		if err := tb.tracker.AddRepartition(pk, int(upstream)); err != nil {
			return nil, fmt.Errorf("topology: repartition %q: %w", topic, err)
		}
		return sourceFn(func(ctx *Context, rec *kgo.Record) error {
			if isControl(rec) {
				c, err := windows.DecodeControl(rec.Value)
				if err == nil {
					err = ctx.tracker.ObserveControl(pk, c, ctx.now)
				}
				if err != nil {
					return &SourceError{Operator: src.name, Err: fmt.Errorf("control record: %w", err)}
				}
				return nil
			}
			k, err := ks.Decode(rec.Key)
			if err != nil {
				return &SourceError{Operator: src.name, Err: fmt.Errorf("key: %w", err)}
			}
			v, err := vs.Decode(rec.Value)
			if err != nil {
				return &SourceError{Operator: src.name, Err: fmt.Errorf("value: %w", err)}
			}
			h := rec.Headers
			if n := len(h); n > 0 && h[n-1].Key == HeaderOrigin {
				ctx.origin, h = h[n-1].Value, h[:n-1:n-1]
			}
			return next(ctx, Record[K, V]{Key: k, Value: v, Timestamp: rec.Timestamp.UnixMilli(), Headers: h})
		}), nil
	}
	return Stream[K, V]{t: s.t, n: src, ks: ks, vs: vs}
}

// keyed returns s partitioned by its current key: s itself when the key is
// unchanged since the source, else s through a repartition topic named
// after the keyed operator.
func keyed[K, V any](s Stream[K, V], operator string) Stream[K, V] {
	if !s.rek {
		return s
	}
	return repartition(s, operator)
}

// To writes the stream to topic with the stream's serdes, partitioned by
// key with Kafka's default (murmur2) partitioner; records without a key
// stick to one partition for StickyBytes, then move to the next, as Java's
// producer does.
func To[K, V any](s Stream[K, V], topic string, opts ...Opt) {
	cfg := applyOpts(KindSink, opts)
	if cfg.name == "" {
		cfg.name = "sink-" + topic
	}
	n := s.t.add(KindSink, cfg, s.n)
	n.topic = topic
	if s.ks == nil || s.vs == nil {
		s.t.errorf("sink %q to %q: the stream has no serdes: use WithSerdes before To", n.name, topic)
	}
	ks, vs := s.ks, s.vs
	n.build = func(tb *taskBuilder) (any, error) {
		out := tb.sink(topic)
		return procFn[K, V](func(ctx *Context, r Record[K, V]) error {
			return send(ctx, out, ks, vs, r, n.name)
		}), nil
	}
}

// buildAs builds node n for this task as an operator taking (K, V).
func buildAs[K, V any](tb *taskBuilder, n *node) (procFn[K, V], error) {
	p, err := tb.build(n)
	if err != nil {
		return nil, err
	}
	f, ok := p.(procFn[K, V])
	if !ok {
		return nil, fmt.Errorf("topology: internal: operator %q built %T, want %T", n.name, p, procFn[K, V](nil))
	}
	return f, nil
}

// downstream builds n's children for this task and returns one function
// that feeds all of them.
func downstream[K, V any](tb *taskBuilder, n *node) (procFn[K, V], error) {
	fns := make([]procFn[K, V], 0, len(n.children))
	for _, c := range n.children {
		f, err := buildAs[K, V](tb, c)
		if err != nil {
			return nil, err
		}
		fns = append(fns, f)
	}
	switch len(fns) {
	case 0:
		return func(*Context, Record[K, V]) error { return nil }, nil
	case 1:
		return fns[0], nil
	default:
		return func(ctx *Context, r Record[K, V]) error {
			for _, f := range fns {
				if err := f(ctx, r); err != nil {
					return err
				}
			}
			return nil
		}, nil
	}
}

// isControl reports whether rec is a watermark control record.
func isControl(rec *kgo.Record) bool {
	for _, h := range rec.Headers {
		if h.Key == windows.HeaderKey {
			return true
		}
	}
	return false
}
