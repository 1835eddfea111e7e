// Command minimal is the smallest user binary: app.Main with one topology.
// TestUserBinaryDeps lists its dependencies.
package main

import (
	"flag"

	"github.com/weirstream/weir/app"
	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/topology"
)

func main() {
	app.Main(app.Topology{
		Name: "copy",
		Help: "copy --input to --output",
		Define: func(fs *flag.FlagSet) func() (*topology.Topology, error) {
			in := fs.String("input", "in", "input topic")
			out := fs.String("output", "out", "output topic")
			return func() (*topology.Topology, error) { return builtin.Passthrough(*in, *out), nil }
		},
	})
}
