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
