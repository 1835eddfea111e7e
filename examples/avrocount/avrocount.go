package main

import (
	"fmt"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// Schema is the Avro schema of the input values.
const Schema = `{
  "type": "record", "name": "Click", "namespace": "weir.examples",
  "fields": [
    {"name": "user", "type": "string"},
    {"name": "page", "type": "string"},
    {"name": "ts", "type": "long", "doc": "event time, epoch ms"}
  ]
}`

// Click is an input value.
type Click struct {
	User, Page string
	TS         int64
}

// Mapping maps Click to and from Avro records of Schema.
var Mapping = serde.AvroMapping[Click]{
	ToMap: func(c Click) (map[string]any, error) {
		return map[string]any{"user": c.User, "page": c.Page, "ts": c.TS}, nil
	},
	FromMap: func(m map[string]any) (Click, error) {
		user, ok1 := m["user"].(string)
		page, ok2 := m["page"].(string)
		ts, ok3 := m["ts"].(int64)
		if !ok1 || !ok2 || !ok3 {
			return Click{}, fmt.Errorf("want user, page (strings) and ts (long), got %s", serde.Excerpt(fmt.Appendf(nil, "%v", m)))
		}
		return Click{User: user, Page: page, TS: ts}, nil
	},
}

// Result is an output value: the clicks of one user in one window.
type Result struct {
	User        string `json:"user"`
	WindowStart int64  `json:"window_start"`
	WindowEnd   int64  `json:"window_end"`
	Count       int64  `json:"count"`
}

// Config configures AvroCount; the flags have the same names.
type Config struct {
	Input, Output  string
	Window         time.Duration
	OutOfOrderness time.Duration
}

// DefaultConfig returns window-count's defaults with Avro topic names.
func DefaultConfig() Config {
	return Config{Input: "clicks-avro", Output: "clicks-avro-per-window", Window: 10 * time.Second, OutOfOrderness: 2 * time.Second}
}

// AvroCount is builtin.WindowCount with Avro input: clicks re-keyed by
// user through a repartition topic, counted in tumbling event-time
// windows, one final result per (user, window).
func AvroCount(cfg Config, clicks serde.Serde[Click]) (*topology.Topology, error) {
	tumbling, err := windows.Tumbling(cfg.Window)
	if err != nil {
		return nil, fmt.Errorf("avrocount: --window: %w", err)
	}
	t := topology.New()
	cs := topology.Source(t, cfg.Input, serde.Bytes(), clicks, topology.Named("source"),
		topology.WithTimestamps(func(_ []byte, c Click, _ int64) (int64, error) { return c.TS, nil }),
		topology.WithWatermarks(windows.BoundedOutOfOrderness(cfg.OutOfOrderness)))
	// Only the user (the new key) and the timestamp cross the repartition
	// topic.
	byUser := topology.Map(cs, func(_ []byte, c Click) (string, []byte, error) { return c.User, nil, nil }, topology.Named("by-user"))
	counts := topology.Aggregate(topology.WithSerdes(byUser, serde.String(), serde.Bytes()),
		windows.Spec{Assigner: tumbling}, windows.Count[[]byte](), serde.Int64(), topology.Named("count"))
	out := topology.MapValues(counts, func(user string, w topology.Windowed[int64]) (Result, error) {
		return Result{User: user, WindowStart: w.Window.Start, WindowEnd: w.Window.End, Count: w.Value}, nil
	}, topology.Named("format"))
	topology.To(topology.WithSerdes(out, serde.String(), serde.JSON[Result]()), cfg.Output, topology.Named("sink"))
	return t, nil
}
