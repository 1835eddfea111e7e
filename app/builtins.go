package app

import (
	"flag"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/topology"
)

// Builtins returns the topologies the weir processor binary ships.
func Builtins() []Topology {
	return []Topology{
		{
			Name: "passthrough",
			Help: "copy --input to --output unchanged (a baseline for benchmarks)",
			Define: func(fs *flag.FlagSet) func() (*topology.Topology, error) {
				in := fs.String("input", "input", "input topic")
				out := fs.String("output", "output", "output topic")
				return func() (*topology.Topology, error) { return builtin.Passthrough(*in, *out), nil }
			},
		},
		{
			Name: "key-count",
			Help: "running count of records per key of --input, as decimal strings to --output",
			Define: func(fs *flag.FlagSet) func() (*topology.Topology, error) {
				in := fs.String("input", "input", "input topic")
				out := fs.String("output", "key-counts", "output topic")
				return func() (*topology.Topology, error) { return builtin.KeyCount(*in, *out), nil }
			},
		},
		{
			Name: "window-count",
			Help: "count JSON events per --key-field in tumbling event-time windows (the demo's job; a stable contract)",
			Define: func(fs *flag.FlagSet) func() (*topology.Topology, error) {
				cfg := builtin.DefaultWindowCount()
				fs.StringVar(&cfg.Input, "input", cfg.Input, "input topic of JSON events with a key field and \"ts\" (epoch ms)")
				fs.StringVar(&cfg.Output, "output", cfg.Output, "output topic of window results")
				fs.StringVar(&cfg.KeyField, "key-field", cfg.KeyField, "JSON field to count by")
				fs.DurationVar(&cfg.Window, "window", cfg.Window, "tumbling window size")
				fs.DurationVar(&cfg.OutOfOrderness, "out-of-orderness", cfg.OutOfOrderness, "watermark lag behind the largest event time seen")
				fs.DurationVar(&cfg.Grace, "grace", cfg.Grace, "allowed lateness after the watermark passes a window's end")
				return func() (*topology.Topology, error) { return builtin.WindowCount(cfg) }
			},
		},
		{
			Name: "click-count",
			Help: "running count of JSON clicks per user (re-keyed through a repartition topic)",
			Define: func(fs *flag.FlagSet) func() (*topology.Topology, error) {
				in := fs.String("input", "clicks", "input topic of JSON clicks {\"user\",\"page\",\"ts\"}")
				out := fs.String("output", "clicks-per-user", "output topic")
				return func() (*topology.Topology, error) { return builtin.ClickCount(*in, *out), nil }
			},
		},
	}
}
