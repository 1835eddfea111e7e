package topology_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
)

// A session-expiry rule: each key's first record sets an event-time timer
// 10 ms later and a processing-time timer 1 s later; timers emit one record
// each. Event-time timers fire as the watermark (here: max event time, the
// default Monotonous strategy) passes them, in time order; processing-time
// timers as Advance's clock does; a timer set twice fires once; a deleted
// timer never fires.
func TestTimers(t *testing.T) {
	str := serde.String()
	env := newFakeEnv(map[string]int32{"out": 1})
	task := newTask(t, func(top *topology.Topology) {
		s := topology.Source(top, "in", str, str)
		out := topology.ProcessTimed(s, func(_ *topology.Context, timers *topology.Timers[string]) (topology.TimedProcessor[string, string, string, string], error) {
			return topology.TimedProcessor[string, string, string, string]{
				Process: func(ctx *topology.Context, r topology.Record[string, string], _ func(topology.Record[string, string]) error) error {
					switch r.Value {
					case "cancel":
						return timers.Delete(topology.EventTime, r.Key, r.Timestamp+10)
					default:
						if err := timers.Register(topology.EventTime, r.Key, r.Timestamp+10); err != nil {
							return err
						}
						return timers.Register(topology.ProcessingTime, r.Key, 1000)
					}
				},
				OnTimer: func(_ *topology.Context, tm topology.Timer[string], out func(topology.Record[string, string]) error) error {
					return out(topology.Record[string, string]{Key: tm.Key, Value: fmt.Sprintf("%s@%d", tm.Domain, tm.Time), Timestamp: tm.Time})
				},
			}, nil
		}, topology.Named("expire"))
		topology.To(topology.WithSerdes(out, str, str), "out")
	}, 0, 0, env)

	step := func(now int64, recs ...[3]any) []string {
		t.Helper()
		for i, r := range recs {
			if err := task.Process(in("in", int64(i), r[0].(string), r[1].(string), r[2].(int64))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := task.Advance(time.UnixMilli(now)); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range env.produced {
			got = append(got, string(r.Key)+"="+string(r.Value))
		}
		env.produced = nil
		return got
	}
	// a@100 -> event timer 110; b@105 -> 115; a@100 again -> same timer.
	if got := step(0, [3]any{"a", "x", int64(100)}, [3]any{"b", "x", int64(105)}, [3]any{"a", "x", int64(100)}); got != nil {
		t.Fatalf("fired before the watermark reached them: %q", got)
	}
	// c@112 moves the watermark to 112: a's timer (110) fires, b's (115) not.
	if got, want := step(0, [3]any{"c", "x", int64(112)}), []string{"a=event-time@110"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	// Move to 200: b (115), c (122).
	if got, want := step(0, [3]any{"z", "cancel", int64(200)}), []string{"b=event-time@115", "c=event-time@122"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	// e@290 sets 300, then a cancel deletes it: moving past 300 fires nothing.
	if got := step(0, [3]any{"e", "x", int64(290)}, [3]any{"e", "cancel", int64(290)}, [3]any{"z", "cancel", int64(400)}); got != nil {
		t.Fatalf("a deleted timer fired: %q", got)
	}
	if got := step(999); got != nil {
		t.Fatalf("processing-time timers fired early: %q", got)
	}
	if got, want := step(1000), []string{"a=processing-time@1000", "b=processing-time@1000", "c=processing-time@1000", "e=processing-time@1000"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	// Every timer fired or was deleted: the timer store is empty.
	if n := env.stores["expire-timers"].Len(); n != 0 {
		t.Fatalf("%d timers left in the store, want 0", n)
	}
}
