package benchcmd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/internal/cliutil"
	"github.com/weirstream/weir/nexmark"
	"github.com/weirstream/weir/topology"
)

// figures are one job's measurements.
type figures struct {
	Events             int64   `json:"events"`
	WallSeconds        float64 `json:"wall_seconds"`
	CPUSeconds         float64 `json:"cpu_seconds"`
	EventsPerCPUSecond float64 `json:"events_per_cpu_second"`
	EventsPerSecond    float64 `json:"events_per_second"`
	PeakRSSBytes       int64   `json:"peak_rss_bytes"`
	// BrokerCPUSeconds is the dev broker's CPU time during the job
	// (kafka mode).
	BrokerCPUSeconds float64 `json:"broker_cpu_seconds,omitempty"`
}

func (f *figures) derive() {
	if f.CPUSeconds > 0 {
		f.EventsPerCPUSecond = float64(f.Events) / f.CPUSeconds
	}
	if f.WallSeconds > 0 {
		f.EventsPerSecond = float64(f.Events) / f.WallSeconds
	}
}

// benchReport is what bench prints (one JSON object with --json).
type benchReport struct {
	Query            string  `json:"query"`
	Mode             string  `json:"mode"`
	Guarantee        string  `json:"guarantee"`
	CommitIntervalMS int64   `json:"commit_interval_ms"`
	Events           int64   `json:"events"`
	Partitions       int     `json:"partitions"`
	Seed             uint64  `json:"seed"`
	Rate             float64 `json:"rate"`
	State            string  `json:"state,omitempty"`
	Weir             figures `json:"weir"`
	// Ceilings: kafka mode, a raw franz-go consume→produce passthrough
	// of the same input on the same broker (at-least-once and
	// transactional); engine mode, weir's byte passthrough topology on
	// the same in-memory runner.
	CeilingAtLeastOnce *figures `json:"ceiling_at_least_once,omitempty"`
	CeilingExactlyOnce *figures `json:"ceiling_exactly_once,omitempty"`
	CeilingEngine      *figures `json:"ceiling_engine,omitempty"`
	// WeirPassthrough (kafka mode) is weir's byte passthrough topology
	// through 'processor run' with the query's guarantee: the engine's
	// own cost over franz-go, without the query's decoding and work.
	WeirPassthrough *figures `json:"weir_passthrough,omitempty"`
	// Ratio is weir ÷ the ceiling of the same guarantee (engine mode:
	// the engine ceiling), in events per CPU-second; RatioWall in events
	// per second.
	Ratio             float64            `json:"ratio"`
	RatioWall         float64            `json:"ratio_wall"`
	RatioAtLeastOnce  float64            `json:"ratio_vs_at_least_once,omitempty"`
	Output            map[string]int64   `json:"output_records,omitempty"`
	InputBytes        int64              `json:"input_bytes"`
	LoadAverage       [3]float64         `json:"load_average"`
	LoadAverageBefore [3]float64         `json:"load_average_before"`
	CPUs              int                `json:"cpus"`
	GoMaxProcs        int                `json:"gomaxprocs"`
	Notes             []string           `json:"notes,omitempty"`
	Extra             map[string]float64 `json:"extra,omitempty"`
}

// benchCfg holds bench's flags.
type benchCfg struct {
	query, mode, state, role string
	guarantee                engine.Guarantee
	interval                 time.Duration
	events                   int64
	partitions               int
	gen                      nexmark.Config
	json                     bool
	cpuProfile, memProfile   string
	// child roles
	brokers, input, output, group string
	expect                        int64
}

// bench measures a Nexmark query: see the command's help.
func (c *cli) bench(ctx context.Context, args []string) error {
	fs := c.flagSet("bench")
	var b benchCfg
	b.gen = nexmark.DefaultConfig()
	fs.StringVar(&b.query, "query", "", "Nexmark query: q0, q1, q2, q5, q7, q11 or q12 (q3 needs joins, not supported yet)")
	fs.Int64Var(&b.events, "events", 1_000_000, "number of generated events")
	fs.StringVar(&b.mode, "mode", "kafka", "engine: the topology's tasks on an in-memory source and sink (the engine's own limit); kafka: a dev broker child process, input pre-loaded, drained by a 'processor run' child")
	b.guarantee = engine.ExactlyOnce
	fs.Func("guarantee", "exactly_once or at_least_once (default exactly_once; kafka mode)", func(s string) error {
		b.guarantee = engine.Guarantee(s)
		return nil
	})
	fs.DurationVar(&b.interval, "commit-interval", 100*time.Millisecond, "commit interval of weir and of the passthrough ceilings")
	fs.IntVar(&b.partitions, "partitions", 8, "input partitions (tasks per sub-topology)")
	fs.Uint64Var(&b.gen.Seed, "seed", b.gen.Seed, "generator seed")
	fs.Float64Var(&b.gen.Rate, "rate", b.gen.Rate, "event-time rate of the generator, events per second of event time")
	baseTime := baseTimeFlag(fs)
	fs.StringVar(&b.state, "state", "badger", "engine mode: badger (the engine's state: write cache, changelog encoding and Badger apply at every checkpoint) or memory (operators alone)")
	fs.BoolVar(&b.json, "json", false, "print one JSON object")
	fs.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of weir's run to this file (kafka mode: of the 'processor run' child, from start to stop)")
	fs.StringVar(&b.memProfile, "memprofile", "", "engine mode: write an allocation profile of the query's run to this file")
	// Child roles, used by bench itself in kafka mode.
	fs.StringVar(&b.role, "role", "", "internal: passthrough or serve (bench's own child processes)")
	fs.StringVar(&b.brokers, "brokers", "", "internal: brokers of a child role")
	fs.StringVar(&b.input, "input", "nexmark", "internal: input topic of a child role")
	fs.StringVar(&b.output, "output", "", "internal: output topic of a child role")
	fs.StringVar(&b.group, "group", "", "internal: group of the passthrough child")
	fs.Int64Var(&b.expect, "expect", 0, "internal: records the passthrough child consumes before it stops")
	if b.isServe(args) {
		return c.benchServe(ctx, args)
	}
	if err := cliutil.Parse(fs, args); err != nil {
		return err
	}
	switch b.role {
	case "":
	case "passthrough":
		if b.cpuProfile != "" {
			stop, err := cliutil.StartCPUProfile(b.cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
		}
		return c.passthroughChild(ctx, &b)
	default:
		return cliutil.UsageError{Err: fmt.Errorf("--role %q: want passthrough or serve", b.role)}
	}
	if b.query == "" {
		return cliutil.UsageError{Err: fmt.Errorf("--query is required: one of %s", strings.Join(nexmark.Queries, ", "))}
	}
	if _, err := nexmark.Topology(b.query, nexmark.QueryConfig{}); err != nil {
		if errors.Is(err, nexmark.ErrNotSupported) {
			return fmt.Errorf("%w; see BENCHMARKS.md, \"Nexmark\"", err)
		}
		return cliutil.UsageError{Err: err}
	}
	if b.events < 1 || b.partitions < 1 {
		return cliutil.UsageError{Err: errors.New("--events and --partitions must be at least 1")}
	}
	if b.guarantee != engine.ExactlyOnce && b.guarantee != engine.AtLeastOnce {
		return cliutil.UsageError{Err: fmt.Errorf("--guarantee %q: want exactly_once or at_least_once", b.guarantee)}
	}
	b.gen.BaseTime = baseTime()
	if err := b.gen.Validate(); err != nil {
		return cliutil.UsageError{Err: err}
	}
	rep := &benchReport{
		Query: b.query, Mode: b.mode, Guarantee: string(b.guarantee), CommitIntervalMS: b.interval.Milliseconds(),
		Events: b.events, Partitions: b.partitions, Seed: b.gen.Seed, Rate: b.gen.Rate,
		CPUs: runtime.NumCPU(), GoMaxProcs: runtime.GOMAXPROCS(0), LoadAverageBefore: loadAverage(),
	}
	var err error
	switch b.mode {
	case "engine":
		err = c.benchEngine(ctx, &b, rep)
	case "kafka":
		err = c.benchKafka(ctx, &b, rep)
	default:
		return cliutil.UsageError{Err: fmt.Errorf("--mode %q: want engine or kafka", b.mode)}
	}
	if err != nil {
		return err
	}
	rep.LoadAverage = loadAverage()
	if b.json {
		out, _ := json.Marshal(rep)
		fmt.Fprintln(c.stdout, string(out))
		return nil
	}
	c.printReport(rep)
	return nil
}

// isServe reports whether args ask for the serve role, whose flags are the
// engine's and the query's rather than bench's.
func (b *benchCfg) isServe(args []string) bool {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == "role=serve" || a == "role" && i+1 < len(args) && args[i+1] == "serve" {
			return true
		}
	}
	return false
}

func (c *cli) printReport(r *benchReport) {
	w := c.stdout
	fmt.Fprintf(w, "nexmark %s, %s mode, %s, commit interval %dms: %d events over %d partitions (seed %d, event-time rate %g/s)\n",
		r.Query, r.Mode, r.Guarantee, r.CommitIntervalMS, r.Events, r.Partitions, r.Seed, r.Rate)
	fmt.Fprintf(w, "%-28s %10s %8s %8s %13s %11s %9s %10s\n", "job", "events", "wall s", "CPU s", "events/CPU-s", "events/s", "peak RSS", "broker CPU")
	row := func(name string, f *figures) {
		if f == nil {
			return
		}
		broker := "-"
		if f.BrokerCPUSeconds > 0 {
			broker = fmt.Sprintf("%.2f s", f.BrokerCPUSeconds)
		}
		fmt.Fprintf(w, "%-28s %10d %8.2f %8.2f %13.0f %11.0f %7.0f MiB %10s\n", name, f.Events, f.WallSeconds, f.CPUSeconds,
			f.EventsPerCPUSecond, f.EventsPerSecond, float64(f.PeakRSSBytes)/(1<<20), broker)
	}
	row("weir "+r.Query, &r.Weir)
	row("franz-go passthrough ALO", r.CeilingAtLeastOnce)
	row("franz-go passthrough EOS", r.CeilingExactlyOnce)
	row("weir passthrough (engine)", r.CeilingEngine)
	row("weir passthrough (kafka)", r.WeirPassthrough)
	fmt.Fprintf(w, "weir ÷ ceiling: %.3f per CPU-second, %.3f per wall second", r.Ratio, r.RatioWall)
	if r.RatioAtLeastOnce > 0 {
		fmt.Fprintf(w, " (÷ at-least-once passthrough: %.3f per CPU-second)", r.RatioAtLeastOnce)
	}
	fmt.Fprintln(w)
	for topic, n := range r.Output {
		fmt.Fprintf(w, "output %s: %d records\n", topic, n)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	fmt.Fprintf(w, "machine: %d CPUs, GOMAXPROCS %d; load average %.2f %.2f %.2f before, %.2f %.2f %.2f after\n",
		r.CPUs, r.GoMaxProcs, r.LoadAverageBefore[0], r.LoadAverageBefore[1], r.LoadAverageBefore[2],
		r.LoadAverage[0], r.LoadAverage[1], r.LoadAverage[2])
}

// benchEngine runs the query and the byte passthrough on the in-memory
// runner, in this process.
func (c *cli) benchEngine(ctx context.Context, b *benchCfg, rep *benchReport) error {
	g, err := nexmark.NewGenerator(b.gen)
	if err != nil {
		return cliutil.UsageError{Err: err}
	}
	in := g.Input("nexmark", b.events, b.partitions, true)
	for _, p := range in.Partitions {
		for _, r := range p {
			rep.InputBytes += int64(len(r.Value))
		}
	}
	rep.State = b.state
	if b.state != "badger" && b.state != "memory" {
		return cliutil.UsageError{Err: fmt.Errorf("--state %q: want badger or memory", b.state)}
	}
	run := func(t *topology.Topology, name string, profile bool) (figures, map[string]int64, error) {
		dir := ""
		if b.state == "badger" {
			if dir, err = os.MkdirTemp("", "weir-bench-"+name+"-"); err != nil {
				return figures{}, nil, err
			}
			defer os.RemoveAll(dir)
		}
		runtime.GC()
		resetPeakRSS()
		cpu0, start := selfCPU(), time.Now()
		stopProfile := func() {}
		if profile && b.cpuProfile != "" {
			if stopProfile, err = cliutil.StartCPUProfile(b.cpuProfile); err != nil {
				return figures{}, nil, err
			}
		}
		stats, err := nexmark.Run(ctx, t, []nexmark.Input{in}, nexmark.RunConfig{
			AppID: "bench-" + name, CommitInterval: b.interval, StateDir: dir,
			// q12's processing-time windows close 10s after their
			// start: moving the clock on at the end fires them, so
			// their results are part of the run.
			DrainTimers: time.Minute,
		})
		stopProfile()
		f := figures{Events: b.events, WallSeconds: time.Since(start).Seconds(), CPUSeconds: selfCPU() - cpu0, PeakRSSBytes: peakRSS(os.Getpid())}
		f.derive()
		if err == nil && profile && b.memProfile != "" {
			err = writeHeapProfile(b.memProfile)
		}
		return f, stats.Output, err
	}
	t, err := nexmark.Topology(b.query, nexmark.QueryConfig{Input: "nexmark", Output: "nexmark-" + b.query + "-out"})
	if err != nil {
		return err
	}
	if rep.Weir, rep.Output, err = run(t, b.query, true); err != nil {
		return err
	}
	ceil, _, err := run(builtin.Passthrough("nexmark", "passthrough-out"), "passthrough", false)
	if err != nil {
		return err
	}
	rep.CeilingEngine = &ceil
	rep.Ratio = ratio(rep.Weir.EventsPerCPUSecond, ceil.EventsPerCPUSecond)
	rep.RatioWall = ratio(rep.Weir.EventsPerSecond, ceil.EventsPerSecond)
	rep.Notes = append(rep.Notes,
		"engine mode: one goroutine runs every task as the engine's loop does (batches, Advance, checkpoints), on an in-memory source and sink; CPU and peak RSS are this process's, and peak RSS includes the input held in memory ("+strconv.FormatInt(rep.InputBytes>>20, 10)+" MiB of JSON)",
		"the engine-mode ceiling is weir's byte passthrough topology (no decoding) on the same runner, not franz-go")
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// benchKafka runs a dev broker child, pre-loads the input, and measures
// the passthrough ceilings and the query, each as a child process.
func (c *cli) benchKafka(ctx context.Context, b *benchCfg, rep *benchReport) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find this binary: %w", err)
	}
	dir, err := os.MkdirTemp("", "weir-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	broker, addr, err := startBroker(ctx, exe, b.partitions, c.stderr)
	if err != nil {
		return err
	}
	defer stopChild(broker)

	g, err := nexmark.NewGenerator(b.gen)
	if err != nil {
		return cliutil.UsageError{Err: err}
	}
	const input = "nexmark"
	loadStart := time.Now()
	total, err := produceNexmark(ctx, []string{addr}, input, g, b.events, int32(b.partitions), true)
	if err != nil {
		return fmt.Errorf("bench: load input: %w", err)
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("input: %d records pre-loaded into the dev broker (a separate process) in %.1fs", total, time.Since(loadStart).Seconds()))
	brokerPID := broker.Process.Pid

	// The ceilings: a raw franz-go consume→produce passthrough, both
	// guarantees, each a child process like weir's.
	for _, g := range []engine.Guarantee{engine.AtLeastOnce, engine.ExactlyOnce} {
		name := "passthrough-" + strings.ReplaceAll(string(g), "_", "-")
		if err := cliutil.CreateTopic(ctx, addr, name+"-out", int32(b.partitions)); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		b0 := procCPU(brokerPID)
		f, err := runPassthrough(ctx, exe, addr, input, name, g, b.interval, total, c.stderr)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", name, err)
		}
		f.Events = b.events
		f.BrokerCPUSeconds = procCPU(brokerPID) - b0
		f.derive()
		if g == engine.AtLeastOnce {
			rep.CeilingAtLeastOnce = &f
		} else {
			rep.CeilingExactlyOnce = &f
		}
	}

	// weir's byte passthrough, when this binary has it.
	if _, ok := c.tops["passthrough"]; ok {
		out := "weir-passthrough-out"
		args := []string{"run", "--topology", "passthrough", "--input", input, "--output", out,
			"--brokers", addr, "--app-id", "bench-passthrough", "--state-dir", filepath.Join(dir, "state-passthrough"),
			"--guarantee", string(b.guarantee), "--commit-interval", b.interval.String(), "--log-level", "warn"}
		if err := cliutil.CreateTopic(ctx, addr, out, int32(b.partitions)); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		httpAddr, err := freeAddr()
		if err != nil {
			return err
		}
		b0 := procCPU(brokerPID)
		f, err := runWeir(ctx, exe, weirJob{args: append(args, "--http", httpAddr), httpAddr: httpAddr, broker: addr,
			group: "bench-passthrough", topics: []string{input}, guarantee: b.guarantee}, c.stderr)
		if err != nil {
			return fmt.Errorf("bench: weir passthrough: %w", err)
		}
		f.Events = b.events
		f.BrokerCPUSeconds = procCPU(brokerPID) - b0
		f.derive()
		rep.WeirPassthrough = &f
	}

	// weir: 'processor run' with the query's topology.
	app := "bench-" + b.query
	output := "nexmark-" + b.query + "-out"
	t, err := nexmark.Topology(b.query, nexmark.QueryConfig{Input: input, Output: output})
	if err != nil {
		return err
	}
	plan, err := t.Build(app)
	if err != nil {
		return err
	}
	topics := []string{input}
	for _, st := range plan.Subtopologies {
		for _, s := range st.Sinks {
			if s.Internal {
				topics = append(topics, s.Topic)
			}
		}
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	runArgs := []string{"--brokers", addr, "--app-id", app, "--input", input, "--output", output,
		"--state-dir", filepath.Join(dir, "state"), "--http", httpAddr, "--guarantee", string(b.guarantee),
		"--commit-interval", b.interval.String(), "--log-level", "warn"}
	if b.cpuProfile != "" {
		runArgs = append(runArgs, "--cpuprofile", b.cpuProfile)
	}
	name := "nexmark-" + b.query
	if _, ok := c.tops[name]; ok {
		runArgs = append([]string{"run", "--topology", name}, runArgs...)
	} else {
		// This binary does not register the queries (see Builtins):
		// the serve role runs the same engine with the same flags.
		runArgs = append([]string{"bench", "--role", "serve", "--query", b.query}, runArgs...)
		rep.Notes = append(rep.Notes, "weir ran as 'processor bench --role serve' (the same engine.Run as 'processor run'), since this binary does not register the nexmark-* topologies")
	}
	b0 := procCPU(brokerPID)
	job := weirJob{args: runArgs, httpAddr: httpAddr, broker: addr, group: app, topics: topics, guarantee: b.guarantee}
	if b.query == "q12" {
		// Its processing-time windows close after the input is
		// committed: their results are part of the job.
		job.output, job.settle = output, nexmark.Q12Window+time.Second
		rep.Notes = append(rep.Notes, "q12: the job ends with its last result; its processing-time windows close up to 10 s after the input is committed, so its wall time includes that wait")
	}
	f, err := runWeir(ctx, exe, job, c.stderr)
	if err != nil {
		return fmt.Errorf("bench: weir %s: %w", b.query, err)
	}
	f.Events = b.events
	f.BrokerCPUSeconds = procCPU(brokerPID) - b0
	f.derive()
	rep.Weir = f
	ceil := rep.CeilingAtLeastOnce
	if b.guarantee == engine.ExactlyOnce {
		ceil = rep.CeilingExactlyOnce
		rep.RatioAtLeastOnce = ratio(f.EventsPerCPUSecond, rep.CeilingAtLeastOnce.EventsPerCPUSecond)
	}
	rep.Ratio = ratio(f.EventsPerCPUSecond, ceil.EventsPerCPUSecond)
	rep.RatioWall = ratio(f.EventsPerSecond, ceil.EventsPerSecond)
	if n, err := endOffsets(ctx, addr, output); err == nil {
		rep.Output = map[string]int64{output: n}
	}
	rep.Notes = append(rep.Notes, "kafka mode: CPU and peak RSS are the measured child process's (from joining the group to the input committed); the broker's CPU is listed separately; every process shares this machine's CPUs",
		"output counts are end offsets, so under exactly_once they include transaction markers")
	return nil
}

// startBroker starts 'processor dev-broker' on a free port and returns it
// with its address.
func startBroker(ctx context.Context, exe string, partitions int, stderr io.Writer) (*exec.Cmd, string, error) {
	cmd := exec.CommandContext(ctx, exe, "dev-broker", "--listen", "127.0.0.1:0", "--partitions", strconv.Itoa(partitions), "--log-level", "error")
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("bench: start dev broker: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "dev broker listening on ")
	if err != nil || !ok {
		stopChild(cmd)
		return nil, "", fmt.Errorf("bench: dev broker did not start (%q, %v)", line, err)
	}
	go io.Copy(io.Discard, out) //nolint:errcheck // drain
	return cmd, addr, nil
}

// stopChild stops a child process with SIGTERM (then SIGKILL after 30s)
// and waits for it.
func stopChild(cmd *exec.Cmd) *os.ProcessState {
	if cmd.ProcessState != nil {
		return cmd.ProcessState
	}
	cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill() //nolint:errcheck // best effort
		}
	}()
	cmd.Wait() //nolint:errcheck // a signalled child exits non-zero
	close(done)
	return cmd.ProcessState
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// runPassthrough runs the passthrough role as a child and returns the
// figures it reports about itself.
func runPassthrough(ctx context.Context, exe, broker, input, name string, g engine.Guarantee, interval time.Duration, expect int64, stderr io.Writer) (figures, error) {
	cmd := exec.CommandContext(ctx, exe, "bench", "--role", "passthrough", "--brokers", broker, "--input", input,
		"--output", name+"-out", "--group", name, "--guarantee", string(g), "--commit-interval", interval.String(),
		"--expect", strconv.FormatInt(expect, 10))
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return figures{}, err
	}
	var f figures
	if err := json.Unmarshal(out, &f); err != nil {
		return figures{}, fmt.Errorf("passthrough child printed %q: %w", out, err)
	}
	return f, nil
}

// weirJob is one 'processor run' child of bench's kafka mode.
type weirJob struct {
	args             []string
	httpAddr, broker string
	group            string
	topics           []string // input, then repartition topics
	guarantee        engine.Guarantee
	// output and settle, when settle is positive: results that come
	// after the input is committed (processing-time windows) count too;
	// the job ends at the last change of output's end offsets before
	// they stayed unchanged for settle.
	output string
	settle time.Duration
}

// runWeir starts weir as a child, and measures from the moment it is ready
// (its /readyz answers 200: it joined the group and owns tasks) to the
// moment its group has committed the end of the input and of every
// repartition topic (and, with settle, its last late output).
func runWeir(ctx context.Context, exe string, j weirJob, stderr io.Writer) (figures, error) {
	args, httpAddr, broker, group, topics, g := j.args, j.httpAddr, j.broker, j.group, j.topics, j.guarantee
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return figures{}, err
	}
	defer stopChild(cmd)
	exited := make(chan error, 1)
	go func() { _, err := cmd.Process.Wait(); exited <- err }()
	pid := cmd.Process.Pid
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(cliutil.WaitTimeout)
	for {
		resp, err := hc.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			return figures{}, fmt.Errorf("exited before it was ready: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return figures{}, errors.New("not ready after 30s")
		}
	}
	start, cpu0 := time.Now(), procCPU(pid)

	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return figures{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// Transactions end with a marker, which the committed offset of a
	// fully consumed partition does not count; at-least-once has none.
	slack := int64(0)
	if g == engine.ExactlyOnce {
		slack = 1
	}
	pause := func(d time.Duration) error {
		select {
		case err := <-exited:
			return fmt.Errorf("exited while processing: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	sample := func() figures {
		return figures{WallSeconds: time.Since(start).Seconds(), CPUSeconds: procCPU(pid) - cpu0, PeakRSSBytes: peakRSS(pid)}
	}
	var (
		f      figures
		stable int
	)
	for stable < 5 {
		if err := pause(20 * time.Millisecond); err != nil {
			return figures{}, err
		}
		lag, err := groupLag(ctx, adm, group, topics, slack)
		if err != nil || lag > 0 {
			stable = 0
			continue
		}
		if stable == 0 {
			f = sample()
		}
		stable++
	}
	if j.settle <= 0 {
		return f, nil
	}
	last, changed := int64(-1), time.Now()
	for time.Since(changed) < j.settle {
		if err := pause(50 * time.Millisecond); err != nil {
			return figures{}, err
		}
		n, err := endOffsets(ctx, broker, j.output)
		if err != nil {
			return figures{}, err
		}
		if n != last {
			last, changed, f = n, time.Now(), sample()
		}
	}
	return f, nil
}

// groupLag is how many records of topics group has not committed, beyond
// slack per partition (the input topic has no transaction markers).
func groupLag(ctx context.Context, adm *kadm.Client, group string, topics []string, slack int64) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var lag int64
	ends.Each(func(o kadm.ListedOffset) {
		s := slack
		if o.Topic == topics[0] {
			s = 0
		}
		c, ok := committed.Lookup(o.Topic, o.Partition)
		if !ok {
			lag += o.Offset
			return
		}
		lag += max(o.Offset-c.At-s, 0)
	})
	return lag, nil
}

func endOffsets(ctx context.Context, broker, topic string) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, nil
}

// passthroughChild is the ceiling: consume input and produce every record
// unchanged to output (same partition), committing every commit interval:
// offsets after a flush (at-least-once) or in a transaction with the
// outputs (exactly-once, franz-go's GroupTransactSession, as weir). It
// stops after expect records and prints its figures as JSON.
func (c *cli) passthroughChild(ctx context.Context, b *benchCfg) error {
	if b.brokers == "" || b.output == "" || b.group == "" || b.expect < 1 {
		return cliutil.UsageError{Err: errors.New("--role passthrough needs --brokers, --output, --group and --expect")}
	}
	var (
		ready   = make(chan struct{})
		readyOK atomic.Bool
	)
	opts := []kgo.Opt{
		kgo.SeedBrokers(cliutil.SplitList(b.brokers)...),
		kgo.ConsumerGroup(b.group),
		kgo.ConsumeTopics(b.input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(100000),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			if readyOK.CompareAndSwap(false, true) {
				close(ready)
			}
		}),
	}
	var (
		cl   *kgo.Client
		sess *kgo.GroupTransactSession
		err  error
	)
	eos := b.guarantee == engine.ExactlyOnce
	if eos {
		sess, err = kgo.NewGroupTransactSession(append(opts, kgo.TransactionalID(b.group+"-txn"))...)
		if err == nil {
			cl = sess.Client()
			defer sess.Close()
		}
	} else {
		cl, err = kgo.NewClient(opts...)
		if err == nil {
			defer cl.Close()
		}
	}
	if err != nil {
		return err
	}
	var failed atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	var (
		consumed int64
		start    time.Time
		cpu0     float64
		lastCP   = time.Now()
		inTxn    bool
	)
	for consumed < b.expect || inTxn {
		if eos && !inTxn {
			if err := sess.Begin(); err != nil {
				return err
			}
			inTxn = true
		}
		pctx, cancel := context.WithDeadline(ctx, lastCP.Add(b.interval))
		fetches := cl.PollRecords(pctx, 10000)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if start.IsZero() && readyOK.Load() {
			<-ready
			start, cpu0 = time.Now(), selfCPU()
		}
		fetches.EachRecord(func(r *kgo.Record) {
			out := &kgo.Record{Topic: b.output, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
			if eos {
				sess.Produce(ctx, out, promise)
			} else {
				cl.Produce(ctx, out, promise)
			}
			consumed++
		})
		if time.Since(lastCP) < b.interval && consumed < b.expect {
			continue
		}
		if eos {
			committed, err := sess.End(ctx, kgo.TryCommit)
			if err != nil {
				return err
			}
			inTxn = false
			if !committed {
				return errors.New("transaction aborted")
			}
		} else {
			if err := cl.Flush(ctx); err != nil {
				return err
			}
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				return err
			}
		}
		if p := failed.Load(); p != nil {
			return *p
		}
		lastCP = time.Now()
	}
	f := figures{Events: consumed, WallSeconds: time.Since(start).Seconds(), CPUSeconds: selfCPU() - cpu0, PeakRSSBytes: peakRSS(os.Getpid())}
	f.derive()
	out, _ := json.Marshal(f)
	fmt.Fprintln(c.stdout, string(out))
	return nil
}

// benchServe runs a query's topology in the engine, exactly as 'processor
// run --topology nexmark-qN' would: bench's weir child when this binary
// does not register the nexmark topologies.
func (c *cli) benchServe(ctx context.Context, args []string) error {
	fs := c.flagSet("bench --role serve")
	cfg := engine.DefaultConfig()
	brokers, logLevel := cliutil.EngineFlags(fs, &cfg)
	fs.String("role", "", "serve")
	query := fs.String("query", "", "the query")
	qcfg := nexmark.QueryConfig{}
	fs.StringVar(&qcfg.Input, "input", "nexmark", "input topic")
	fs.StringVar(&qcfg.Output, "output", "", "output topic")
	fs.DurationVar(&qcfg.OutOfOrderness, "out-of-orderness", 4*time.Second, "watermark lag")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := cliutil.Parse(fs, args); err != nil {
		return err
	}
	cfg.Brokers = cliutil.SplitList(*brokers)
	var err error
	if cfg.Logger, err = cliutil.NewLogger(c.stderr, *logLevel); err != nil {
		return err
	}
	t, err := nexmark.Topology(*query, qcfg)
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

// Process measurements (Linux /proc; zero elsewhere).

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc.
const clockTicks = 100

// procCPU returns a process's user+system CPU seconds.
func procCPU(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command (which may contain spaces) start at
	// the state, field 3; utime and stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / clockTicks
}

// selfCPU returns this process's CPU seconds with microsecond resolution.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// peakRSS returns a process's VmHWM in bytes.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// resetPeakRSS resets this process's VmHWM to its current RSS.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) } //nolint:errcheck // Linux only

func loadAverage() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	for i := range min(3, len(f)) {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}
