// Command goka-peer runs the same job — a running count per key — in
// lovoo/goka (at-least-once, through sarama) and in weir (builtin key-count,
// exactly-once by default), on the same input in the same dev broker in the
// same run, and prints both throughputs in events per CPU-second and their
// ratio. It is its own module so that weir's module does not depend on
// goka.
//
//	cd peers/goka && go run . --events 2000000
//
// It builds the processor binary from the repository (--repo, default
// ../..) unless --processor names one, starts 'processor dev-broker' as a
// child, writes --events records with --keys distinct keys to an input
// topic, partitioned with the FNV-1a hash sarama and goka use
// (kgo.SaramaHasher), then runs each job as a child process until its
// consumer group has committed the end of the input. CPU time and peak RSS
// are the job process's, from its start (both jobs start, join and create
// their topics) to that moment, read from /proc.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type figures struct {
	Events             int64   `json:"events"`
	WallSeconds        float64 `json:"wall_seconds"`
	CPUSeconds         float64 `json:"cpu_seconds"`
	EventsPerCPUSecond float64 `json:"events_per_cpu_second"`
	EventsPerSecond    float64 `json:"events_per_second"`
	PeakRSSBytes       int64   `json:"peak_rss_bytes"`
	BrokerCPUSeconds   float64 `json:"broker_cpu_seconds"`
}

type report struct {
	Events      int64      `json:"events"`
	Keys        int        `json:"keys"`
	Partitions  int        `json:"partitions"`
	Goka        figures    `json:"goka"`
	Weir        figures    `json:"weir"`
	WeirGuar    string     `json:"weir_guarantee"`
	Ratio       float64    `json:"ratio_weir_over_goka"`
	LoadAverage [3]float64 `json:"load_average"`
	CPUs        int        `json:"cpus"`
}

func main() {
	log.SetFlags(0)
	role := flag.String("role", "", "internal: goka (the goka job as a child)")
	brokers := flag.String("brokers", "", "internal: brokers of the goka child")
	storageDir := flag.String("storage", "", "internal: the goka child's LevelDB directory")
	events := flag.Int64("events", 2_000_000, "input records")
	keys := flag.Int("keys", 10_000, "distinct keys, drawn uniformly")
	partitions := flag.Int("partitions", 8, "input partitions")
	processor := flag.String("processor", "", "path of the weir processor binary (default: build it from --repo)")
	repo := flag.String("repo", "../..", "the weir repository, to build the processor binary from")
	guarantee := flag.String("guarantee", "exactly_once", "weir's guarantee")
	asJSON := flag.Bool("json", false, "print one JSON object")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *role == "goka" {
		err = runGoka(ctx, strings.Split(*brokers, ","), *storageDir)
	} else {
		err = drive(ctx, *events, *keys, *partitions, *processor, *repo, *guarantee, *asJSON)
	}
	if err != nil && ctx.Err() == nil {
		log.Fatal("goka-peer: ", err)
	}
}

const (
	input     = "keys"
	gokaGroup = "goka-count"
	gokaOut   = "goka-counts"
	weirApp   = "weir-count"
	weirOut   = "weir-counts"
)

// runGoka is the peer job: count per key in the group table, and emit each
// new count (as weir's key-count does) to an output topic.
func runGoka(ctx context.Context, brokers []string, dir string) error {
	cfg := goka.DefaultConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	goka.ReplaceGlobalConfig(cfg)
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication, tmc.Stream.Replication = 1, 1
	count := func(ctx goka.Context, _ any) {
		var n int64
		if v := ctx.Value(); v != nil {
			n = v.(int64)
		}
		n++
		ctx.SetValue(n)
		ctx.Emit(gokaOut, ctx.Key(), strconv.FormatInt(n, 10))
	}
	g := goka.DefineGroup(gokaGroup,
		goka.Input(input, new(codec.String), count),
		goka.Output(gokaOut, new(codec.String)),
		goka.Persist(new(codec.Int64)),
	)
	p, err := goka.NewProcessor(brokers, g,
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithTopicManagerConfig(tmc)),
		goka.WithStorageBuilder(storage.DefaultBuilder(dir)),
		goka.WithLogger(log.New(io.Discard, "", 0)))
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

func drive(ctx context.Context, events int64, keys, partitions int, processor, repo, guarantee string, asJSON bool) error {
	dir, err := os.MkdirTemp("", "goka-peer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if processor == "" {
		processor = filepath.Join(dir, "processor")
		build := exec.CommandContext(ctx, "go", "build", "-o", processor, "./cmd/processor")
		build.Dir, build.Stderr = repo, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build the processor in %s: %w (pass --processor PATH)", repo, err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	broker := exec.CommandContext(ctx, processor, "dev-broker", "--listen", "127.0.0.1:0", "--partitions", strconv.Itoa(partitions), "--log-level", "error")
	broker.Stderr = os.Stderr
	out, err := broker.StdoutPipe()
	if err != nil {
		return err
	}
	if err := broker.Start(); err != nil {
		return err
	}
	defer stopChild(broker)
	line, _ := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "dev broker listening on ")
	if !ok {
		return fmt.Errorf("dev broker did not start: %q", line)
	}
	go io.Copy(io.Discard, out) //nolint:errcheck // drain

	// The input, partitioned as sarama (and so goka) partitions keys.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<16),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(kgo.SaramaHasher(func(b []byte) uint32 {
			h := fnv.New32a()
			h.Write(b)
			return h.Sum32()
		}))))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, t := range []string{input, gokaOut, weirOut} {
		if _, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, t); err != nil {
			return fmt.Errorf("create %s: %w", t, err)
		}
	}
	var seed uint64 = 1
	value := []byte("0123456789abcdef")
	for range events {
		seed = seed*6364136223846793005 + 1442695040888963407
		k := "k" + strconv.Itoa(int(seed>>33)%keys)
		cl.Produce(ctx, &kgo.Record{Topic: input, Key: []byte(k), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				log.Fatal("goka-peer: produce: ", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	brokerPID := broker.Process.Pid

	rep := report{Events: events, Keys: keys, Partitions: partitions, WeirGuar: guarantee, CPUs: runtime.NumCPU()}
	b0 := procCPU(brokerPID)
	rep.Goka, err = measure(ctx, adm, gokaGroup, events, exec.CommandContext(ctx, self, "--role", "goka", "--brokers", addr, "--storage", filepath.Join(dir, "goka")))
	if err != nil {
		return fmt.Errorf("goka: %w", err)
	}
	rep.Goka.BrokerCPUSeconds = procCPU(brokerPID) - b0
	b0 = procCPU(brokerPID)
	rep.Weir, err = measure(ctx, adm, weirApp, events, exec.CommandContext(ctx, processor, "run", "--topology", "key-count",
		"--brokers", addr, "--app-id", weirApp, "--input", input, "--output", weirOut, "--state-dir", filepath.Join(dir, "weir"),
		"--http", "", "--guarantee", guarantee, "--log-level", "warn"))
	if err != nil {
		return fmt.Errorf("weir: %w", err)
	}
	rep.Weir.BrokerCPUSeconds = procCPU(brokerPID) - b0
	if rep.Goka.EventsPerCPUSecond > 0 {
		rep.Ratio = rep.Weir.EventsPerCPUSecond / rep.Goka.EventsPerCPUSecond
	}
	rep.LoadAverage = loadAverage()
	if asJSON {
		b, _ := json.Marshal(rep)
		fmt.Println(string(b))
		return nil
	}
	fmt.Printf("key count: %d records, %d keys, %d partitions, same dev broker, same input\n", events, keys, partitions)
	fmt.Printf("%-34s %8s %8s %13s %11s %9s %10s\n", "job", "wall s", "CPU s", "events/CPU-s", "events/s", "peak RSS", "broker CPU")
	for _, r := range []struct {
		name string
		f    figures
	}{{"goka v1.1.17 (at-least-once)", rep.Goka}, {"weir key-count (" + guarantee + ")", rep.Weir}} {
		fmt.Printf("%-34s %8.2f %8.2f %13.0f %11.0f %5.0f MiB %8.2f s\n", r.name, r.f.WallSeconds, r.f.CPUSeconds,
			r.f.EventsPerCPUSecond, r.f.EventsPerSecond, float64(r.f.PeakRSSBytes)/(1<<20), r.f.BrokerCPUSeconds)
	}
	fmt.Printf("weir ÷ goka: %.2f× events per CPU-second\n", rep.Ratio)
	fmt.Printf("machine: %d CPUs; load average %.2f %.2f %.2f\n", rep.CPUs, rep.LoadAverage[0], rep.LoadAverage[1], rep.LoadAverage[2])
	return nil
}

// measure starts cmd and waits until group has committed the end of the
// input (stable over five polls), then stops it.
func measure(ctx context.Context, adm *kadm.Client, group string, events int64, cmd *exec.Cmd) (figures, error) {
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return figures{}, err
	}
	defer stopChild(cmd)
	exited := make(chan error, 1)
	go func() { _, err := cmd.Process.Wait(); exited <- err }()
	var (
		f      figures
		stable int
	)
	for stable < 5 {
		select {
		case err := <-exited:
			return figures{}, fmt.Errorf("exited: %v", err)
		case <-ctx.Done():
			return figures{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		ends, err := adm.ListEndOffsets(ctx, input)
		if err != nil {
			return figures{}, err
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			stable = 0
			continue
		}
		var lag int64
		ends.Each(func(o kadm.ListedOffset) {
			c, ok := committed.Lookup(o.Topic, o.Partition)
			if !ok {
				lag += o.Offset
				return
			}
			lag += max(o.Offset-c.At, 0)
		})
		if lag > 0 {
			stable = 0
			continue
		}
		if stable == 0 {
			f = figures{Events: events, WallSeconds: time.Since(start).Seconds(), CPUSeconds: procCPU(cmd.Process.Pid), PeakRSSBytes: peakRSS(cmd.Process.Pid)}
		}
		stable++
	}
	if f.CPUSeconds > 0 {
		f.EventsPerCPUSecond = float64(events) / f.CPUSeconds
	}
	f.EventsPerSecond = float64(events) / f.WallSeconds
	return f, nil
}

func stopChild(cmd *exec.Cmd) {
	if cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)                                //nolint:errcheck // it may have exited
	t := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() }) //nolint:errcheck // best effort
	cmd.Wait()                                                         //nolint:errcheck // a signalled child exits non-zero
	t.Stop()
}

// procCPU returns a process's user+system CPU seconds (/proc, USER_HZ 100).
func procCPU(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
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
	return (u + st) / 100
}

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
