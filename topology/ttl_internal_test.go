package topology

import (
	"testing"

	"github.com/weirstream/weir/state"
)

// valueStore is a Store whose type is not comparable with ==.
type valueStore struct {
	state.Store
	tags []string
}

// A store is scheduled once per domain however often handles over it are
// opened (a handle opened per record must not grow the task's sweeps),
// and stores of types == panics on are told apart without a panic.
func TestScheduleSweepOncePerStoreAndDomain(t *testing.T) {
	c := &Context{}
	a, b := state.NewMemStore(), state.NewMemStore()
	v1, v2 := valueStore{Store: a}, valueStore{Store: a}
	for range 3 {
		c.ScheduleSweep(a, state.EventTime)
		c.ScheduleSweep(b, state.EventTime)
		c.ScheduleSweep(a, state.ProcessingTime)
		c.ScheduleSweep(nil, state.EventTime)
	}
	c.ScheduleSweep(v1, state.EventTime)
	c.ScheduleSweep(v2, state.EventTime)
	if n := len(c.sweeps); n != 5 {
		t.Fatalf("%d sweeps scheduled, want 5 (a and b in event time, a in processing time, two value stores)", n)
	}
}
