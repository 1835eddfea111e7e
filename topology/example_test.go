package topology_test

import (
	"fmt"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

type Click struct {
	User string `json:"user"`
	TS   int64  `json:"ts"`
}

// The README's windowed topology: clicks per user in 10-second tumbling
// event-time windows. The key change before Aggregate makes the plan two
// sub-topologies joined by a repartition topic.
func Example() {
	t := topology.New()
	clicks := topology.Source(t, "clicks", serde.Bytes(), serde.JSON[Click](),
		topology.WithTimestamps(func(_ []byte, c Click, _ int64) (int64, error) { return c.TS, nil }),
		topology.WithWatermarks(windows.BoundedOutOfOrderness(2*time.Second)))
	byUser := topology.SelectKey(clicks, func(_ []byte, c Click) (string, error) { return c.User, nil },
		serde.String(), topology.Named("by-user"))
	tumbling := windows.Checked(windows.Tumbling(10 * time.Second)) // a bad size is a Build error
	counts := topology.Aggregate(byUser, windows.Spec{Assigner: tumbling},
		windows.Count[Click](), serde.Int64(), topology.Named("count"))
	out := topology.MapValues(counts, func(user string, w topology.Windowed[int64]) (string, error) {
		return fmt.Sprintf("%s %d-%d: %d", user, w.Window.Start, w.Window.End, w.Value), nil
	})
	topology.To(topology.WithSerdes(out, serde.String(), serde.String()), "clicks-per-window")

	plan, err := t.Build("clicks-app")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, st := range plan.Subtopologies {
		fmt.Println(st.ID, st.Sources[0].Topic, st.Stores)
	}
	// Output:
	// 0 clicks []
	// 1 clicks-app-count-repartition [count-store]
}

// A Process that drops every record whose key it saw within the last hour
// of event time: a value state with a TTL, the task context as its clock.
// Expiry counts from each record's timestamp and is judged against the
// watermark (nothing expires while it is unknown); the engine sweeps keys
// nobody reads again at its checkpoints.
func ExampleProcess_dedupWithTTL() {
	t := topology.New()
	events := topology.Source(t, "events", serde.String(), serde.String())
	unique := topology.Process(events, func(ctx *topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
		st, err := ctx.Store("dedup-seen")
		if err != nil {
			return nil, err
		}
		seen := state.NewValue(st, serde.Int64(), state.WithTTL(state.EventTimeTTL(time.Hour), ctx))
		return func(ctx *topology.Context, r topology.Record[string, string], out func(topology.Record[string, string]) error) error {
			if _, dup, err := seen.Get([]byte(r.Key)); err != nil || dup {
				return err
			}
			if err := seen.Set([]byte(r.Key), r.Timestamp); err != nil {
				return err
			}
			return out(r)
		}, nil
	}, topology.Named("dedup"), topology.Stores("dedup-seen"))
	topology.To(topology.WithSerdes(unique, serde.String(), serde.String()), "unique-events")

	plan, err := t.Build("dedup-app")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(plan.Subtopologies[0].Stores)
	// Output: [dedup-seen]
}
