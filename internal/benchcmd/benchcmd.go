// Package benchcmd is the bench and gen commands of weir's processor binary
// and the Nexmark queries as its topologies. Only cmd/processor links it: a
// user's binary built with app.Main links neither this package nor Nexmark.
package benchcmd

import (
	"context"
	"flag"
	"io"

	"github.com/weirstream/weir/app"
	"github.com/weirstream/weir/nexmark"
)

// Topologies returns the Nexmark queries as CLI topologies ("nexmark-q0" ...
// "nexmark-q12").
func Topologies() []app.Topology {
	var tops []app.Topology
	for _, d := range nexmark.Topologies() {
		tops = append(tops, app.Topology(d))
	}
	return tops
}

// Commands returns gen and bench for a binary whose topologies are tops:
// bench's kafka mode runs its weir jobs as 'processor run' when tops has
// the topology (passthrough, nexmark-qN), else as 'processor bench --role
// serve'.
func Commands(tops []app.Topology) []app.Command {
	names := make(map[string]bool, len(tops))
	for _, t := range tops {
		names[t.Name] = true
	}
	cmd := func(run func(*cli, context.Context, []string) error) func(context.Context, []string, io.Writer, io.Writer) error {
		return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return run(&cli{stdout: stdout, stderr: stderr, tops: names}, ctx, args)
		}
	}
	return []app.Command{
		{Name: "gen", Help: "write generated events (Nexmark) to a topic", Run: cmd((*cli).gen)},
		{Name: "bench", Help: "measure a query's throughput against raw franz-go baselines", Run: cmd((*cli).bench)},
	}
}

// cli is one run of a command, on the goroutine app.Run calls it on.
type cli struct {
	stdout, stderr io.Writer
	tops           map[string]bool // the binary's topologies
}

func (c *cli) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}
