// Command processor is weir's command line: the demo, a development broker,
// the built-in topologies and the Nexmark queries run as members of a
// consumer group, and the benchmarks.
package main

import (
	"github.com/weirstream/weir/app"
	"github.com/weirstream/weir/internal/benchcmd"
)

func main() {
	tops := append(app.Builtins(), benchcmd.Topologies()...)
	app.MainWith(app.Config{Topologies: tops, Commands: benchcmd.Commands(tops)})
}
