package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weirstream/weir/engine"
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

// Main runs the processor CLI with the given topologies and exits. A user's
// binary is just:
//
//	func main() { app.Main(app.Topology{Name: "mine", Define: ...}) }
func Main(tops ...Topology) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, os.Args[1:], os.Stdout, os.Stderr, tops...)
	stop()
	os.Exit(code)
}

// Run runs one CLI command and returns the process exit code: 0 on success,
// 1 when the command failed, 2 for bad usage. Cancelling ctx stops a
// running command gracefully.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, tops ...Topology) int {
	c := &cli{stdout: stdout, stderr: stderr, tops: make(map[string]Topology)}
	for _, t := range tops {
		c.tops[t.Name] = t
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		c.usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmds := map[string]func(context.Context, []string) error{
		"run":        c.run,
		"describe":   c.describe,
		"dev-broker": c.devBroker,
		"demo":       c.demo,
		"topologies": c.list,
		"gen":        c.gen,
		"bench":      c.bench,
		// (a section of its own so gofmt does not realign the lines above)
		"healthcheck": c.healthcheck,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "processor: unknown command %q\n\n", args[0])
		c.usage()
		return 2
	}
	err := cmd(ctx, args[1:])
	var ue usageError
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
}

type usageError struct{ error }

func (c *cli) usage() {
	fmt.Fprint(c.stderr, `processor — weir, a Kafka-native stream processor

Commands:
  demo        run the demo: an embedded broker, a click generator and a windowed count
  run         run a topology as one member of its application's consumer group
  describe    print a topology's operators, sub-topologies and topics
  dev-broker  run a Kafka-protocol development broker on localhost
  topologies  list the topologies this binary knows
  healthcheck GET a processor's /healthz: exit 0 on HTTP 200, 1 otherwise (container health checks)
  gen         write generated events (Nexmark) to a topic
  bench       measure a query's throughput against raw franz-go baselines

Run 'processor COMMAND -h' for a command's flags. Every flag can also be set
with an environment variable WEIR_<FLAG> (e.g. WEIR_BROKERS=host:9092).
`)
}

// parse parses flags, taking defaults from WEIR_* environment variables.
func parse(fs *flag.FlagSet, args []string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := "WEIR_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	return nil
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
			return nil, usageError{fmt.Errorf("--topology is required; known: %s", c.names())}
		}
		return nil, usageError{fmt.Errorf("unknown topology %q; known: %s", name, c.names())}
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
	if err := parse(fs, args); err != nil {
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

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), nil
}

// engineFlags registers the flags of an engine.Config.
func engineFlags(fs *flag.FlagSet, cfg *engine.Config) (brokers, logLevel *string) {
	brokers = fs.String("brokers", "", "comma-separated seed brokers, host:port (required)")
	fs.StringVar(&cfg.AppID, "app-id", "", "application id: the consumer group and internal-topic prefix; processes with the same id share the work (required)")
	fs.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "address for /healthz, /readyz, /metrics and the JSON API; empty disables it")
	fs.DurationVar(&cfg.CommitInterval, "commit-interval", cfg.CommitInterval, "time between checkpoints")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", cfg.SessionTimeout, "consumer group session timeout")
	fs.Func("on-error", "what to do with a record that fails to decode or process: dlq, skip or fail (default dlq)", func(s string) error {
		cfg.OnError = engine.ErrorPolicy(s)
		return nil
	})
	fs.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "directory of this process's local state; each process needs its own, and a restart on the same one replays only the changelog tail")
	fs.Func("state-memory-mb", "memory budget of local state in MiB: Badger memtables and caches, task write caches (default 256)", func(s string) error {
		mb, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		cfg.StateMemory = mb << 20
		return nil
	})
	fs.IntVar(&cfg.StandbyReplicas, "standby-replicas", cfg.StandbyReplicas, "how many other processes keep a warm copy of each stateful task, so a failover replays only a short tail")
	fs.DurationVar(&cfg.StateCleanupDelay, "state-cleanup-delay", cfg.StateCleanupDelay, "how long to keep the local state of a task this process no longer owns")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "a caught-up input partition quiet this long stops holding the watermark back (0 = never)")
	fs.BoolVar(&cfg.AdvanceWhenIdle, "advance-when-idle", cfg.AdvanceWhenIdle, "when every input of a task is idle, advance its watermark with the wall clock so the last windows close")
	fs.BoolVar(&cfg.AllowStateLoss, "allow-state-loss", cfg.AllowStateLoss, "start even if the topology drops state (a store, its changelog, a repartition topic) the application kept when it last ran, e.g. after renaming an operator; without it such a start is refused")
	fs.Func("guarantee", "processing guarantee: exactly_once or at_least_once (default exactly_once)", func(s string) error {
		cfg.Guarantee = engine.Guarantee(s)
		return nil
	})
	logLevel = fs.String("log-level", "info", "log level: debug, info, warn or error")
	return brokers, logLevel
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c *cli) run(ctx context.Context, args []string) error {
	fs := c.flagSet("run")
	cfg := engine.DefaultConfig()
	brokers, logLevel := engineFlags(fs, &cfg)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run, start to stop, to this file (go tool pprof reads it)")
	build, err := c.pick(args, fs)
	if err != nil {
		fs.Parse(nil) //nolint:errcheck // only for -h
		return err
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg.Brokers = splitList(*brokers)
	if cfg.Logger, err = newLogger(c.stderr, *logLevel); err != nil {
		return err
	}
	t, err := build()
	if err != nil {
		return usageError{err}
	}
	e, err := engine.New(t, cfg)
	if err != nil {
		return usageError{err}
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	return e.Run(ctx)
}

// startCPUProfile starts writing a CPU profile to path; stop ends it.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func (c *cli) describe(_ context.Context, args []string) error {
	fs := c.flagSet("describe")
	appID := fs.String("app-id", "app", "application id used to name internal topics")
	format := fs.String("format", "text", "output format: text, dot or json")
	build, err := c.pick(args, fs)
	if err != nil {
		return err
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	t, err := build()
	if err != nil {
		return usageError{err}
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
		return usageError{fmt.Errorf("--format %q: want text, dot or json", *format)}
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
	if err := parse(fs, args); err != nil {
		return err
	}
	var err error
	if cfg.Logger, err = newLogger(c.stderr, *logLevel); err != nil {
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

// waitTimeout is how long commands wait for something to come up.
const waitTimeout = 30 * time.Second
