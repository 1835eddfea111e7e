package topology

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/windows"
)

// Combine pre-aggregates a keyed stream before its next repartition (a
// combiner): within each batch a task processes, the records of one key
// whose event times fall in one slice of assigner's windows (see
// windows.Assigner.Slice: a tumbling window, or a hopping window's
// advance) are folded with agg into one record, which Combine emits at the
// end of the batch (Task.Advance, before every checkpoint) with the key,
// the accumulator as value and the latest event time among them. Every
// instant of a slice belongs to the same windows, so a windowed Aggregate
// downstream over the same windows, merging the accumulators (Count here,
// Sum there), gives the results it would give without Combine; it then
// reads one record per key, slice and batch instead of one per input
// record, which shrinks the repartition topic and spreads a hot key's load
// over the tasks upstream.
//
// A combined record has no headers (and no origin: it is many records'). If
// it fails downstream (a serde, a user function), the error policy sets it
// aside as itself (see EmitError). A record late at the downstream
// Aggregate goes to the late-data output as part of its combined record.
// The stream needs a key serde (Combine groups by the encoded key); give
// the output a value serde with WithSerdes.
func Combine[K, V, A any](s Stream[K, V], assigner windows.Assigner, agg windows.Aggregation[V, A], opts ...Opt) Stream[K, A] {
	cfg := applyOpts(KindCombine, opts)
	if cfg.name == "" {
		cfg.name = fmt.Sprintf("%s-%d", KindCombine, len(s.t.nodes))
	}
	n := s.t.add(KindCombine, cfg, s.n)
	if err := assigner.Err(); err != nil {
		s.t.errorf("combine %q: %v", n.name, err)
	} else if _, ok := assigner.Slice(0); !ok {
		s.t.errorf("combine %q: %s windows have no slices to combine records in: use tumbling or hopping windows", n.name, assigner.Kind())
	}
	if agg.Init == nil || agg.Add == nil {
		s.t.errorf("combine %q: the aggregation needs Init and Add", n.name)
	}
	if s.ks == nil {
		s.t.errorf("combine %q: the stream has no key serde: use WithSerdes before Combine", n.name)
	}
	ks := s.ks
	n.build = func(tb *taskBuilder) (any, error) {
		next, err := downstream[K, A](tb, n)
		if err != nil {
			return nil, err
		}
		type group struct {
			key K
			ts  int64
			acc A
		}
		var (
			groups []group
			index  = make(map[int64]map[string]int) // slice start -> encoded key -> groups index
			spare  []map[string]int                 // emptied maps of index, kept with their room
		)
		tb.flushers = append(tb.flushers, func() error {
			if len(groups) == 0 {
				return nil
			}
			var errs []error
			for _, g := range groups {
				if err := next(tb.ctx, Record[K, A]{Key: g.key, Value: g.acc, Timestamp: g.ts}); err != nil {
					errs = append(errs, combineError(tb.ctx, n.name, ks, g.key, g.ts, err))
				}
			}
			clear(groups)
			groups = groups[:0]
			for slice, keys := range index {
				clear(keys)
				spare = append(spare, keys)
				delete(index, slice)
			}
			return errors.Join(errs...)
		})
		return procFn[K, V](func(ctx *Context, r Record[K, V]) error {
			kb, err := ks.Encode(r.Key)
			if err != nil {
				return &OperatorError{Operator: n.name, Err: fmt.Errorf("encode key: %w", err)}
			}
			slice, _ := assigner.Slice(r.Timestamp)
			keys := index[slice]
			if keys == nil {
				if n := len(spare); n > 0 {
					keys, spare = spare[n-1], spare[:n-1]
				} else {
					keys = make(map[string]int)
				}
				index[slice] = keys
			}
			i, ok := keys[string(kb)]
			if !ok {
				i = len(groups)
				keys[string(kb)] = i
				groups = append(groups, group{key: r.Key, ts: r.Timestamp, acc: agg.Init()})
			}
			g := &groups[i]
			g.acc = agg.Add(g.acc, r.Value)
			g.ts = max(g.ts, r.Timestamp)
			return nil
		}), nil
	}
	return derive[K, V, K, A](s, n, ks, nil, s.rek)
}

// combineError is err of the combined record of key with event time ts:
// an *EmitError that sets it aside (key, time, operator; the accumulator
// has no serde here) when err is a record's; err itself otherwise.
func combineError[K any](ctx *Context, op string, ks serde.Serde[K], key K, ts int64, err error) error {
	if !isRecordError(err) {
		return err
	}
	kb, kerr := ks.Encode(key)
	if kerr != nil {
		kb = nil
	}
	rec := &kgo.Record{
		Key: kb, Partition: ctx.env.Task.Partition, Offset: -1, Timestamp: time.UnixMilli(ts),
		Headers: []kgo.RecordHeader{{Key: HeaderEmitOperator, Value: []byte(op)}},
	}
	return &EmitError{Record: rec, Err: err}
}
