package topology

import (
	"fmt"
	"reflect"

	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/windows"
)

// The task context is the clock of state handles with a TTL:
//
//	seen := state.NewValue(st, serde.Int64(), state.WithTTL(state.EventTimeTTL(time.Hour), ctx))
//
// and it sweeps the stores of those handles at every checkpoint.
var (
	_ state.Clock          = (*Context)(nil)
	_ state.SweepScheduler = (*Context)(nil)
)

// state.UnknownTime and windows.Unknown are the same sentinel (a
// difference either way would be a negative constant: no compile).
const _ = uint64(state.UnknownTime-windows.Unknown) + uint64(windows.Unknown-state.UnknownTime)

// SweepLimit is how many entries of each store with TTL handles a task
// examines for expired values at a checkpoint (Task.SweepExpired), going
// on where the previous checkpoint stopped.
const SweepLimit = 1000

// ttlSweep is a store a TTL handle was opened over, with its sweeper.
type ttlSweep struct {
	store  state.Store
	domain state.TimeDomain
	sw     *state.Sweeper
}

// Timestamp returns the event time (epoch ms) of the record being
// processed, or of the event-time timer firing; windows.Unknown when there
// is neither (a processing-time timer, a factory).
func (c *Context) Timestamp() int64 { return c.ts }

// ScheduleSweep makes the task sweep s for values expired in domain at
// every checkpoint. state's handles call it when opened with a TTL and
// this context as their clock (state.WithTTL), on the task's goroutine;
// scheduling a store again (a handle opened per record) has no effect.
func (c *Context) ScheduleSweep(s state.Store, domain state.TimeDomain) {
	if s == nil {
		return
	}
	for _, sw := range c.sweeps {
		if sw.domain == domain && sameStore(sw.store, s) {
			return
		}
	}
	c.sweeps = append(c.sweeps, ttlSweep{store: s, domain: domain, sw: state.NewSweeper(s, domain, c)})
}

// sameStore reports whether a and b are the same store, without the panic
// of == on a non-comparable store type.
func sameStore(a, b state.Store) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.Type() == vb.Type() && va.Comparable() && va.Equal(vb)
}

// SweepExpired deletes expired values from the stores of the task's TTL
// handles, examining at most SweepLimit entries of each and going on where
// the last call stopped; in event time nothing expires while the
// watermark is unknown. The deletes are store deletes: the engine calls it
// at every checkpoint barrier, before it writes the changelogs, so they
// reach the changelog as tombstones in the same transaction. It runs on
// the task's goroutine and returns how many values it deleted; an error
// is a store's.
func (t *Task) SweepExpired() (int, error) {
	total := 0
	for _, s := range t.ctx.sweeps {
		n, err := s.sw.Sweep(SweepLimit)
		total += n
		if err != nil {
			return total, fmt.Errorf("topology: task %s: TTL sweep: %w", t.ID, err)
		}
	}
	return total, nil
}
