// Command processor is weir's command line: the demo, a development broker,
// and the built-in topologies run as members of a consumer group.
package main

import "github.com/weirstream/weir/app"

func main() { app.Main(app.Builtins()...) }
