package topologytest_test

import (
	"fmt"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/topologytest"
	"github.com/weirstream/weir/windows"
)

type Click struct {
	User string `json:"user"`
	TS   int64  `json:"ts"`
}

// clicksPerWindow counts clicks per user in 10s windows: the README's
// topology, with a key change (so a repartition topic) before the windows.
func clicksPerWindow() *topology.Topology {
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
		return fmt.Sprintf("[%d,%d) %d", w.Window.Start, w.Window.End, w.Value), nil
	})
	topology.To(topology.WithSerdes(out, serde.String(), serde.String()), "clicks-per-window")
	return t
}

func Example() {
	d, err := topologytest.New(clicksPerWindow(), topologytest.Partitions(2))
	if err != nil {
		panic(err)
	}
	in := topologytest.NewInput(d, "clicks", serde.Bytes(), serde.JSON[Click]())
	pipe := func(p int32, user string, ts int64) {
		if err := in.Pipe(p, nil, Click{User: user, TS: ts}, ts); err != nil {
			panic(err)
		}
	}
	pipe(0, "ann", 1_000)
	pipe(1, "bob", 4_000)
	pipe(0, "ann", 500) // out of order, within the 2s bound
	pipe(1, "ann", 9_000)
	pipe(0, "bob", 13_000)                 // partition 0's watermark: 11s
	pipe(1, "bob", 12_500)                 // partition 1's watermark: 10.5s; window [0,10s) can close
	if err := d.Checkpoint(); err != nil { // carries watermarks through the repartition topic
		panic(err)
	}
	results, _ := topologytest.OutputOf(d, "clicks-per-window", serde.String(), serde.String())
	for _, r := range results {
		fmt.Println(r.Key, r.Value)
	}

	pipe(1, "bob", 2_000) // its window has closed
	for _, r := range d.Late() {
		w, _ := r.Header(topology.HeaderLateWindows)
		fmt.Printf("late: %s in [%s)\n", r.Key, w)
	}
	fmt.Println("downstream watermark:", d.Watermark(topology.TaskID{Subtopology: 1, Partition: 0}))
	// Output:
	// ann [0,10000) 3
	// bob [0,10000) 1
	// late: bob in [0-10000)
	// downstream watermark: 10500
}
