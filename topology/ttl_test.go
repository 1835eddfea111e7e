package topology_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// The context's Timestamp is the event time a TTL write counts from: the
// record's in Process, the timer's for an event-time timer, none for a
// processing-time timer or in the factory. A handle with a TTL over the
// context is swept by Task.SweepExpired once the watermark passes its
// expiry, however many times it was opened.
func TestContextIsTTLClock(t *testing.T) {
	str := serde.String()
	env := newFakeEnv(map[string]int32{"out": 1})
	var seen []string
	note := func(what string, ctx *topology.Context) {
		ts := "unknown"
		if v := ctx.Timestamp(); v != windows.Unknown {
			ts = time.UnixMilli(v).UTC().Format("05.000")
		}
		seen = append(seen, what+" "+ts)
	}
	task := newTask(t, func(top *topology.Topology) {
		s := topology.Source(top, "in", str, str)
		out := topology.ProcessTimed(s, func(ctx *topology.Context, timers *topology.Timers[string]) (topology.TimedProcessor[string, string, string, string], error) {
			note("factory", ctx)
			st, err := ctx.Store("seen")
			if err != nil {
				return topology.TimedProcessor[string, string, string, string]{}, err
			}
			return topology.TimedProcessor[string, string, string, string]{
				Process: func(ctx *topology.Context, r topology.Record[string, string], _ func(topology.Record[string, string]) error) error {
					note("record", ctx)
					// Opened per record: scheduled for sweeping once.
					v := state.NewValue(st, str, state.WithTTL(state.EventTimeTTL(time.Second), ctx))
					if err := v.Set([]byte(r.Key), r.Value); err != nil {
						return err
					}
					if err := timers.Register(topology.EventTime, r.Key, r.Timestamp+10); err != nil {
						return err
					}
					return timers.Register(topology.ProcessingTime, r.Key, 5000)
				},
				OnTimer: func(ctx *topology.Context, tm topology.Timer[string], _ func(topology.Record[string, string]) error) error {
					note(tm.Domain.String(), ctx)
					return nil
				},
			}, nil
		}, topology.Named("p"), topology.Stores("seen"))
		topology.To(topology.WithSerdes(out, str, str), "out")
	}, 0, 0, env)

	for i, r := range []struct {
		key string
		ts  int64
	}{{"a", 1000}, {"b", 1500}, {"c", 1600}} {
		if err := task.Process(in("in", int64(i), r.key, "x", r.ts)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := task.Advance(time.UnixMilli(5000)); err != nil { // watermark 1600
		t.Fatal(err)
	}
	want := []string{"factory unknown", "record 01.000", "record 01.500", "record 01.600",
		"event-time 01.010", "event-time 01.510", "processing-time unknown", "processing-time unknown", "processing-time unknown"}
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("timestamps seen:\n got  %q\n want %q", seen, want)
	}
	// Watermark 1600: nothing expired yet (a expires at 2000).
	if n, err := task.SweepExpired(); n != 0 || err != nil {
		t.Fatalf("sweep at watermark 1600: %d (%v), want 0", n, err)
	}
	if err := task.Process(in("in", 3, "d", "x", 2550)); err != nil {
		t.Fatal(err)
	}
	if _, err := task.Advance(time.UnixMilli(5000)); err != nil { // watermark 2550
		t.Fatal(err)
	}
	if n, err := task.SweepExpired(); n != 2 || err != nil { // a (2000), b (2500)
		t.Fatalf("sweep at watermark 2550: %d (%v), want 2", n, err)
	}
	if n := env.stores["seen"].Len(); n != 2 {
		t.Fatalf("%d values left, want 2 (c, d)", n)
	}
}

// A task restarted on its state starts from the watermark its checkpoint
// recorded, not an unknown one: in its first batch a value that expired
// before the restart reads as expired (with an unknown watermark nothing
// would expire, and the dedup below would drop a's second record).
func TestTTLAfterRestartUsesSeededWatermark(t *testing.T) {
	str := serde.String()
	env := newFakeEnv(map[string]int32{"out": 1})
	program := func(top *topology.Topology) {
		s := topology.Source(top, "in", str, str)
		out := topology.Process(s, func(ctx *topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
			st, err := ctx.Store("seen")
			if err != nil {
				return nil, err
			}
			seen := state.NewValue(st, serde.Int64(), state.WithTTL(state.EventTimeTTL(time.Second), ctx))
			return func(_ *topology.Context, r topology.Record[string, string], out func(topology.Record[string, string]) error) error {
				if _, dup, err := seen.Get([]byte(r.Key)); err != nil || dup {
					return err
				}
				if err := seen.Set([]byte(r.Key), r.Timestamp); err != nil {
					return err
				}
				return out(r)
			}, nil
		}, topology.Named("dedup"), topology.Stores("seen"))
		topology.To(topology.WithSerdes(out, str, str), "out")
	}
	task := newTask(t, program, 0, 0, env)
	if err := task.Process(in("in", 0, "a", "first", 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := task.Advance(time.UnixMilli(0)); err != nil {
		t.Fatal(err)
	}
	// Restart with the checkpoint's watermark, past a's expiry (2000).
	task = newTask(t, program, 0, 0, env)
	task.SeedWatermark("in", 0, 2500)
	if err := task.Process(in("in", 1, "a", "again", 2600)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range env.produced {
		got = append(got, string(r.Value))
	}
	if want := []string{"first", "again"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("output %q, want %q", got, want)
	}
}
