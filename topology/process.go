package topology

import (
	"errors"
	"fmt"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
)

// ProcessFunc handles one record of a keyed stream. It may read and write
// the task's state stores through ctx and emit any number of records with
// out. It runs on the task's goroutine; an error goes to the error policy.
type ProcessFunc[K, V, KO, VO any] func(ctx *Context, r Record[K, V], out func(Record[KO, VO]) error) error

// ProcessorFactory is called once for every task that runs the operator,
// when the task starts, on the task's goroutine. It typically opens typed
// state handles over ctx.Store and returns the per-record function.
type ProcessorFactory[K, V, KO, VO any] func(ctx *Context) (ProcessFunc[K, V, KO, VO], error)

// Process runs a keyed process function. Records reach it partitioned by
// their current key (through a repartition topic if the key changed), so
// all records of one key meet in one task and share its state. Declare the
// stores it uses with Stores(...). The output stream has no serdes: attach
// them with WithSerdes before a sink.
func Process[K, V, KO, VO any](s Stream[K, V], factory ProcessorFactory[K, V, KO, VO], opts ...Opt) Stream[KO, VO] {
	cfg := applyOpts(KindProcess, opts)
	s.t.deriveName(KindProcess, &cfg)
	cfg.rekeyed = s.rek
	in := keyed(s, cfg.name)
	n := in.t.add(KindProcess, cfg, in.n)
	n.build = func(tb *taskBuilder) (any, error) {
		next, err := downstream[KO, VO](tb, n)
		if err != nil {
			return nil, err
		}
		fn, err := factory(tb.ctx)
		if err != nil {
			return nil, fmt.Errorf("topology: operator %q: open: %w", n.name, err)
		}
		out := func(r Record[KO, VO]) error { return next(tb.ctx, r) }
		return procFn[K, V](func(ctx *Context, r Record[K, V]) error {
			prev := ctx.ts // restored: an upstream Process in the task may go on after out
			ctx.ts = r.Timestamp
			err := fn(ctx, r, out)
			ctx.ts = prev
			if err != nil {
				return operatorError(n.name, err)
			}
			return nil
		}), nil
	}
	return derive[K, V, KO, VO](in, n, nil, nil, true)
}

// Count emits the running count of records per key each time it changes.
// Its state lives in the store "<operator>-store".
func Count[K, V any](s Stream[K, V], opts ...Opt) Stream[K, int64] {
	cfg := applyOpts("count", opts)
	s.t.deriveName("count", &cfg)
	s.t.rejectOpts("count", cfg.name, cfg)
	storeName := cfg.name + "-store"
	if cfg.derived {
		s.t.unnamed("count", cfg.name, []string{storeName}, s.rek)
	}
	ks := s.ks
	if ks == nil {
		s.t.errorf("count %q: the stream has no key serde: use WithSerdes before Count", cfg.name)
	}
	i64 := serde.Int64()
	out := Process(s, func(ctx *Context) (ProcessFunc[K, V, K, int64], error) {
		st, err := ctx.Store(storeName)
		if err != nil {
			return nil, err
		}
		return func(ctx *Context, r Record[K, V], emit func(Record[K, int64]) error) error {
			kb, err := ks.Encode(r.Key)
			if err != nil {
				return err
			}
			var n int64
			switch old, err := st.Get(kb); {
			case err == nil:
				if n, err = i64.Decode(old); err != nil {
					return fmt.Errorf("stored count: %w", err)
				}
			case !errors.Is(err, state.ErrNotFound):
				return err
			}
			n++
			nb, _ := i64.Encode(n)
			if err := st.Put(kb, nb); err != nil {
				return err
			}
			return emit(Record[K, int64]{Key: r.Key, Value: n, Timestamp: r.Timestamp, Headers: r.Headers})
		}, nil
	}, Named(cfg.name), Stores(storeName), Queryable(storeName, ks, i64))
	out.ks, out.vs, out.rek = ks, i64, false
	return out
}
