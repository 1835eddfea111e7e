package app_test

import (
	"context"
	"flag"
	"os"

	"github.com/weirstream/weir/app"
	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/topology"
)

// A user's binary is one call with its topologies; app.Run is the same CLI
// with explicit arguments and writers (app.Main uses os.Args and exits).
func Example() {
	mine := app.Topology{
		Name: "copy",
		Help: "copy --input to --output",
		Define: func(fs *flag.FlagSet) func() (*topology.Topology, error) {
			in := fs.String("input", "in", "input topic")
			out := fs.String("output", "out", "output topic")
			return func() (*topology.Topology, error) { return builtin.Passthrough(*in, *out), nil }
		},
	}
	app.Run(context.Background(), []string{"topologies"}, os.Stdout, os.Stderr, mine)
	// Output: copy             copy --input to --output
}
