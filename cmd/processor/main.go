// Command processor is weir's command line: the demo, a development broker,
// the built-in topologies and the Nexmark queries run as members of a
// consumer group, and the benchmarks.
package main

import "github.com/weirstream/weir/app"

func main() { app.Main(append(app.Builtins(), app.NexmarkTopologies()...)...) }
