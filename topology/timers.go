package topology

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/windows"
)

// TimeDomain says which clock a timer follows.
type TimeDomain byte

const (
	// EventTime timers fire when the task watermark reaches them.
	EventTime TimeDomain = 'e'
	// ProcessingTime timers fire when the wall clock reaches them.
	ProcessingTime TimeDomain = 'p'
)

func (d TimeDomain) String() string {
	if d == EventTime {
		return "event-time"
	}
	return "processing-time"
}

// Timer is a timer that fired.
type Timer[K any] struct {
	Key    K
	Time   int64 // epoch ms
	Domain TimeDomain
}

// Timers registers timers for the keys of one task of a ProcessTimed
// operator. A timer is identified by (domain, time, key): registering it
// twice is one timer. Timers live in the operator's store
// "<operator>-timers", so they are checkpointed, changelogged and restored
// like all state, and fire after a restart or a move to another process.
// Like all task state, Timers is used only on the task's goroutine.
type Timers[K any] struct {
	store state.Store
	ks    serde.Serde[K]
}

// timerKey is domain(1) int64be(time ^ 1<<63) key: timers of one domain
// sort by time, so firing is a prefix scan that stops at the first future
// timer.
func timerKey(d TimeDomain, ts int64, key []byte) []byte {
	b := make([]byte, 0, 9+len(key))
	b = append(b, byte(d))
	b = binary.BigEndian.AppendUint64(b, uint64(ts)^1<<63)
	return append(b, key...)
}

// Register sets a timer for key at time ts in domain d.
func (t *Timers[K]) Register(d TimeDomain, key K, ts int64) error {
	kb, err := t.ks.Encode(key)
	if err != nil {
		return fmt.Errorf("topology: timer key: %w", err)
	}
	return t.store.Put(timerKey(d, ts, kb), nil)
}

// Delete removes a timer; deleting one that is not set is not an error.
func (t *Timers[K]) Delete(d TimeDomain, key K, ts int64) error {
	kb, err := t.ks.Encode(key)
	if err != nil {
		return fmt.Errorf("topology: timer key: %w", err)
	}
	return t.store.Delete(timerKey(d, ts, kb))
}

var errStopScan = errors.New("stop")

// due removes and returns the timers of domain d at or before now, in time
// order.
func (t *Timers[K]) due(d TimeDomain, now int64) ([]Timer[K], error) {
	var (
		fired []Timer[K]
		keys  [][]byte
	)
	err := t.store.Scan([]byte{byte(d)}, func(k, _ []byte) error {
		if len(k) < 9 {
			return fmt.Errorf("topology: corrupt timer %x: %d bytes, want at least 9", k, len(k))
		}
		ts := int64(binary.BigEndian.Uint64(k[1:9]) ^ 1<<63)
		if ts > now {
			return errStopScan
		}
		key, err := t.ks.Decode(k[9:])
		if err != nil {
			return fmt.Errorf("topology: stored timer key: %w", err)
		}
		fired = append(fired, Timer[K]{Key: key, Time: ts, Domain: d})
		keys = append(keys, append([]byte(nil), k...))
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return nil, err
	}
	for _, k := range keys {
		if err := t.store.Delete(k); err != nil {
			return nil, err
		}
	}
	return fired, nil
}

// TimedProcessor is a keyed process function with timers: Process handles
// records, OnTimer handles timers that fired. Both run on the task's
// goroutine and may read and write state, register timers and emit.
type TimedProcessor[K, V, KO, VO any] struct {
	Process ProcessFunc[K, V, KO, VO]
	OnTimer func(ctx *Context, t Timer[K], out func(Record[KO, VO]) error) error
}

// ProcessTimed is Process with timers: the factory gets the task's Timers
// for the operator and returns the record and timer handlers. Event-time
// timers fire when the task watermark reaches them, processing-time timers
// when the wall clock does (checked at every batch boundary, so at most a
// commit interval late). The operator uses the store "<operator>-timers"
// in addition to the stores it declares.
func ProcessTimed[K, V, KO, VO any](s Stream[K, V], factory func(ctx *Context, timers *Timers[K]) (TimedProcessor[K, V, KO, VO], error), opts ...Opt) Stream[KO, VO] {
	cfg := applyOpts(KindProcess, opts)
	s.t.deriveName(KindProcess, &cfg)
	if s.ks == nil {
		s.t.errorf("process %q: timers need the stream's key serde: use WithSerdes before it", cfg.name)
	}
	timerStore := cfg.name + "-timers"
	cfg.stores = append(cfg.stores, timerStore)
	cfg.rekeyed = s.rek
	in := keyed(s, cfg.name)
	ks := in.ks
	n := in.t.add(KindProcess, cfg, in.n)
	n.build = func(tb *taskBuilder) (any, error) {
		next, err := downstream[KO, VO](tb, n)
		if err != nil {
			return nil, err
		}
		st, err := tb.ctx.Store(timerStore)
		if err != nil {
			return nil, err
		}
		timers := &Timers[K]{store: st, ks: ks}
		p, err := factory(tb.ctx, timers)
		if err != nil {
			return nil, fmt.Errorf("topology: operator %q: open: %w", n.name, err)
		}
		if p.Process == nil {
			return nil, fmt.Errorf("topology: operator %q: the factory returned no Process function", n.name)
		}
		out := func(r Record[KO, VO]) error { return next(tb.ctx, r) }
		if p.OnTimer != nil {
			tb.advancers = append(tb.advancers, func(wm int64) error {
				var errs []error
				for _, d := range [...]TimeDomain{EventTime, ProcessingTime} {
					now := wm
					if d == ProcessingTime {
						now = tb.ctx.now.UnixMilli()
					}
					// A timer store that cannot be read, or holds
					// what is no timer, is no record's fault: it
					// stops the task (as an error of a record it
					// would be dead-lettered again at every batch).
					fired, err := timers.due(d, now)
					if err != nil {
						return errors.Join(append(errs, fmt.Errorf("topology: operator %q: timers: %w", n.name, err))...)
					}
					// A timer that fails is done, like one that
					// fired: it was deleted, and the timers after it
					// still fire.
					ts := windows.Unknown // a processing-time timer has no event time
					for _, t := range fired {
						if d == EventTime {
							ts = t.Time
						}
						prev := tb.ctx.ts
						tb.ctx.ts = ts
						err := p.OnTimer(tb.ctx, t, out)
						tb.ctx.ts = prev
						if err != nil {
							errs = append(errs, timerError(tb.ctx, n.name, ks, t, operatorError(n.name, err)))
						}
					}
				}
				return errors.Join(errs...)
			})
		}
		return procFn[K, V](func(ctx *Context, r Record[K, V]) error {
			prev := ctx.ts
			ctx.ts = r.Timestamp
			err := p.Process(ctx, r, out)
			ctx.ts = prev
			if err != nil {
				return operatorError(n.name, err)
			}
			return nil
		}), nil
	}
	return derive[K, V, KO, VO](in, n, nil, nil, true)
}

// operatorError names the operator a user function error came from, unless
// a downstream operator already did.
func operatorError(op string, err error) error {
	var oe *OperatorError
	if errors.As(err, &oe) {
		return err
	}
	return &OperatorError{Operator: op, Err: err}
}

// timerError is err of timer t of operator op: an *EmitError that sets the
// timer aside (its key, time and domain) when err is a record's, for the
// error policy; err itself otherwise.
func timerError[K any](ctx *Context, op string, ks serde.Serde[K], t Timer[K], err error) error {
	if !isRecordError(err) {
		return err
	}
	kb, kerr := ks.Encode(t.Key)
	if kerr != nil {
		kb = nil
	}
	rec := &kgo.Record{
		Key: kb, Partition: ctx.env.Task.Partition, Offset: -1, Timestamp: time.UnixMilli(t.Time),
		Headers: []kgo.RecordHeader{
			{Key: HeaderEmitOperator, Value: []byte(op)},
			{Key: HeaderTimerTime, Value: strconv.AppendInt(nil, t.Time, 10)},
			{Key: HeaderTimerDomain, Value: []byte(t.Domain.String())},
		},
	}
	return &EmitError{Record: rec, Err: err}
}
