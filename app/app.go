package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/internal/cliutil"
	"github.com/weirstream/weir/kafkaio"
	"github.com/weirstream/weir/topology"
)

// Topology is a named topology the CLI can run and describe.
type Topology struct {
	// Name is what --topology selects.
	Name string
	// Help is one line for the topology list.
	Help string
	// Define registers the topology's own flags (they may be nil) and
	// returns the function that builds the topology once flags are
	// parsed.
	Define func(fs *flag.FlagSet) func() (*topology.Topology, error)
}

// Command is an extra command of the CLI, next to run, describe and the
// others: weir's own processor binary adds bench and gen this way.
type Command struct {
	// Name is the command's word on the command line.
	Name string
	// Help is one line for the command list.
	Help string
	// Run runs the command with the arguments after its name. It is called
	// once, on the goroutine that called MainWith or RunWith; stdout and
	// stderr are RunWith's writers (os.Stdout and os.Stderr for MainWith).
	// ctx is cancelled on SIGINT or SIGTERM (MainWith) or with RunWith's
	// ctx. The error decides the exit code: nil or one wrapping
	// flag.ErrHelp exits 0, one wrapping an error made by UsageError exits
	// 2, any other exits 1; any but nil and flag.ErrHelp is printed to
	// stderr.
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// UsageError marks err as bad usage: a Command returning it exits 2, not 1.
func UsageError(err error) error { return cliutil.UsageError{Err: err} }

// Config is what a CLI binary offers: its topologies and extra commands.
type Config struct {
	Topologies []Topology
	// Commands must have a Run and a name that is not empty, does not start
	// with "-", and is not a built-in command's, "help" or another
	// Command's; RunWith refuses other Configs with exit code 2.
	Commands []Command
}

// Main runs the processor CLI with the given topologies and exits. A user's
// binary is just:
//
//	func main() { app.Main(app.Topology{Name: "mine", Define: ...}) }
func Main(tops ...Topology) { MainWith(Config{Topologies: tops}) }

// MainWith is Main with extra commands.
func MainWith(cfg Config) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := RunWith(ctx, os.Args[1:], os.Stdout, os.Stderr, cfg)
	stop()
	os.Exit(code)
}

// Run runs one CLI command and returns the process exit code: 0 on success,
// 1 when the command failed, 2 for bad usage. Cancelling ctx stops a
// running command gracefully.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, tops ...Topology) int {
	return RunWith(ctx, args, stdout, stderr, Config{Topologies: tops})
}

// RunWith is Run with extra commands.
func RunWith(ctx context.Context, args []string, stdout, stderr io.Writer, cfg Config) int {
	c := &cli{stdout: stdout, stderr: stderr, tops: make(map[string]Topology), extra: cfg.Commands}
	for _, t := range cfg.Topologies {
		c.tops[t.Name] = t
	}
	cmds := map[string]func(context.Context, []string) error{
		"run":        c.run,
		"describe":   c.describe,
		"dev-broker": c.devBroker,
		"demo":       c.demo,
		"topologies": c.list,
		// (a section of its own so gofmt does not realign the lines above)
		"healthcheck": c.healthcheck,
	}
	for _, x := range cfg.Commands {
		if _, dup := cmds[x.Name]; dup || x.Name == "help" || x.Name == "" || strings.HasPrefix(x.Name, "-") || x.Run == nil {
			fmt.Fprintf(stderr, "processor: command %q is a built-in one, defined twice, not a command word or has no Run\n", x.Name)
			return 2
		}
		cmds[x.Name] = func(ctx context.Context, args []string) error { return x.Run(ctx, args, stdout, stderr) }
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		c.usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "processor: unknown command %q\n\n", args[0])
		c.usage()
		return 2
	}
	err := cmd(ctx, args[1:])
	var ue cliutil.UsageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "processor %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "processor %s: %v\n", args[0], err)
		return 1
	}
}

type cli struct {
	stdout, stderr io.Writer
	tops           map[string]Topology
	extra          []Command
}

func (c *cli) usage() {
	fmt.Fprint(c.stderr, `processor — weir, a Kafka-native stream processor

Commands:
  demo        run the demo: an embedded broker, a click generator and a windowed count
  run         run a topology as one member of its application's consumer group
  describe    print a topology's operators, sub-topologies and topics
  dev-broker  run a Kafka-protocol development broker on localhost
  topologies  list the topologies this binary knows
  healthcheck GET a processor's /healthz: exit 0 on HTTP 200, 1 otherwise (container health checks)
`)
	for _, x := range c.extra {
		fmt.Fprintf(c.stderr, "  %-11s %s\n", x.Name, x.Help)
	}
	fmt.Fprint(c.stderr, `
Run 'processor COMMAND -h' for a command's flags. Every flag can also be set
with an environment variable WEIR_<FLAG> (e.g. WEIR_BROKERS=host:9092).
`)
}

func (c *cli) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

// topologyArg finds --topology in args before the flags are parsed: the
// chosen topology's own flags must be registered first.
func topologyArg(args []string) string {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, "topology="); ok {
			return v
		}
		if a == "topology" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return os.Getenv("WEIR_TOPOLOGY")
}

func (c *cli) pick(args []string, fs *flag.FlagSet) (func() (*topology.Topology, error), error) {
	name := topologyArg(args)
	fs.String("topology", "", "the topology to run (see 'processor topologies')")
	t, ok := c.tops[name]
	if !ok {
		if name == "" {
			return nil, cliutil.UsageError{Err: fmt.Errorf("--topology is required; known: %s", c.names())}
		}
		return nil, cliutil.UsageError{Err: fmt.Errorf("unknown topology %q; known: %s", name, c.names())}
	}
	return t.Define(fs), nil
}

func (c *cli) names() string {
	var ns []string
	for n := range c.tops {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return strings.Join(ns, ", ")
}

func (c *cli) list(_ context.Context, args []string) error {
	fs := c.flagSet("topologies")
	if err := cliutil.Parse(fs, args); err != nil {
		return err
	}
	var ns []string
	for n := range c.tops {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	for _, n := range ns {
		fmt.Fprintf(c.stdout, "%-16s %s\n", n, c.tops[n].Help)
	}
	return nil
}

func (c *cli) run(ctx context.Context, args []string) error {
	fs := c.flagSet("run")
	cfg := engine.DefaultConfig()
	brokers, logLevel := cliutil.EngineFlags(fs, &cfg)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run, start to stop, to this file (go tool pprof reads it)")
	build, err := c.pick(args, fs)
	if err != nil {
		fs.Parse(nil) //nolint:errcheck // only for -h
		return err
	}
	if err := cliutil.Parse(fs, args); err != nil {
		return err
	}
	cfg.Brokers = cliutil.SplitList(*brokers)
	if cfg.Logger, err = cliutil.NewLogger(c.stderr, *logLevel); err != nil {
		return err
	}
	t, err := build()
	if err != nil {
		return cliutil.UsageError{Err: err}
	}
	e, err := engine.New(t, cfg)
	if err != nil {
		return cliutil.UsageError{Err: err}
	}
	if *cpuProfile != "" {
		stop, err := cliutil.StartCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	return e.Run(ctx)
}

func (c *cli) describe(_ context.Context, args []string) error {
	fs := c.flagSet("describe")
	appID := fs.String("app-id", "app", "application id used to name internal topics")
	format := fs.String("format", "text", "output format: text, dot or json")
	build, err := c.pick(args, fs)
	if err != nil {
		return err
	}
	if err := cliutil.Parse(fs, args); err != nil {
		return err
	}
	t, err := build()
	if err != nil {
		return cliutil.UsageError{Err: err}
	}
	plan, err := t.Build(*appID)
	if err != nil {
		return err
	}
	switch *format {
	case "text":
		fmt.Fprint(c.stdout, plan.String())
	case "dot":
		fmt.Fprint(c.stdout, plan.DOT())
	case "json":
		fmt.Fprintln(c.stdout, string(plan.JSON()))
	default:
		return cliutil.UsageError{Err: fmt.Errorf("--format %q: want text, dot or json", *format)}
	}
	return nil
}

func (c *cli) devBroker(ctx context.Context, args []string) error {
	fs := c.flagSet("dev-broker")
	var cfg kafkaio.DevBrokerConfig
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:9092", "host:port to listen on (port 0 picks a free one)")
	fs.StringVar(&cfg.Advertise, "advertise", "", "host:port clients are told to connect to (default: the listen address)")
	fs.IntVar(&cfg.Partitions, "partitions", 8, "partitions of auto-created topics")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory to persist the broker's data (default: memory only). It survives a stop and a kill -9: "+
		"topics, records, group offsets and committed transactions are kept, and after a kill the transactions open then are aborted (abort markers are written at the next start). "+
		"A transaction whose commit was being written at the kill may end up committed on some partitions and aborted on others")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn or error")
	if err := cliutil.Parse(fs, args); err != nil {
		return err
	}
	var err error
	if cfg.Logger, err = cliutil.NewLogger(c.stderr, *logLevel); err != nil {
		return err
	}
	b, err := kafkaio.StartDevBroker(cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(c.stdout, "dev broker listening on %s\n", b.Addr())
	<-ctx.Done()
	fmt.Fprintln(c.stdout, "dev broker stopped")
	return nil
}
