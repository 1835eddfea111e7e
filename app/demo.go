package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/internal/cliutil"
	"github.com/weirstream/weir/kafkaio"
	"github.com/weirstream/weir/topology"
)

const demoApp = "weir-demo"

// demo runs everything in one process: a dev broker on a free loopback
// port, a generator of clicks with out-of-order event times, the
// click-counting topology, and a reader that prints the results.
func (c *cli) demo(ctx context.Context, args []string) error {
	fs := c.flagSet("demo")
	duration := fs.Duration("duration", 0, "stop after this long (default: run until Ctrl-C)")
	rate := fs.Int("rate", 200, "clicks generated per second")
	users := fs.Int("users", 8, "number of distinct users")
	window := fs.Duration("window", 5*time.Second, "tumbling window size")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn or error")
	if err := cliutil.Parse(fs, args); err != nil {
		return err
	}
	if *rate < 1 || *users < 1 {
		return cliutil.UsageError{Err: fmt.Errorf("--rate and --users must be at least 1")}
	}
	log, err := cliutil.NewLogger(c.stderr, *logLevel)
	if err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	b, err := kafkaio.StartDevBroker(kafkaio.DevBrokerConfig{Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()
	const input, output, partitions = "clicks", "clicks-per-window", 8
	if err := cliutil.CreateTopic(ctx, b.Addr(), input, partitions); err != nil {
		return err
	}

	wc := builtin.DefaultWindowCount()
	wc.Input, wc.Output, wc.Window = input, output, *window
	t, err := builtin.WindowCount(wc)
	if err != nil {
		return cliutil.UsageError{Err: err}
	}
	dir, err := os.MkdirTemp("", "weir-demo-state-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := engine.DefaultConfig()
	cfg.Brokers = []string{b.Addr()}
	cfg.AppID = demoApp
	cfg.StateDir = dir
	cfg.Logger = log
	e, err := engine.New(t, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "weir demo: broker %s; %d clicks/s from %d users into %q (%d partitions), event times up to 1.5s out of order, 1%% very late\n",
		b.Addr(), *rate, *users, input, partitions)
	fmt.Fprintf(c.stdout, "window-count: clicks per user in %v tumbling event-time windows, watermark = max ts - %v\n%s\n",
		wc.Window, wc.OutOfOrderness, indent(e.Plan().String()))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return e.Run(gctx) })
	g.Go(func() error { return generate(gctx, b.Addr(), input, *rate, *users) })
	g.Go(func() error { return c.printWindows(gctx, b.Addr(), output, topology.LateTopic(demoApp)) })
	err = g.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		fmt.Fprintln(c.stdout, "demo stopped")
		return nil
	}
	return err
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

// generate produces JSON clicks at rate per second. Event times lag the
// wall clock by up to 1.5 s at random, so they arrive out of order.
func generate(ctx context.Context, broker, topic string, rate, users int) error {
	// Round-robin: every input partition gets clicks, as a keyed input
	// with many keys would (a partition without data holds the watermark
	// back until it counts as idle).
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ProducerLinger(10*time.Millisecond),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	pages := []string{"/", "/pricing", "/docs", "/blog", "/signup"}
	rng := rand.New(rand.NewPCG(1, 2))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	perTick := max(rate/100, 1)
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			for range perTick {
				// Zipf-like skew: low-numbered users click more.
				u := int(float64(users) * rng.Float64() * rng.Float64())
				click := builtin.Click{
					User: fmt.Sprintf("u%d", u+1),
					Page: pages[rng.IntN(len(pages))],
					TS:   now.UnixMilli() - rng.Int64N(1500),
				}
				if rng.IntN(100) == 0 {
					click.TS -= 30_000 // a straggler: goes to the late output
				}
				v, _ := json.Marshal(click)
				cl.Produce(ctx, &kgo.Record{Topic: topic, Value: v}, nil)
			}
		}
	}
}

// printWindows reads the window results and the late records with
// read_committed and prints one table per closed window.
func (c *cli) printWindows(ctx context.Context, broker, output, late string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(output, late),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	type window struct {
		start, end int64
		counts     map[string]int64
	}
	var (
		open   = make(map[int64]*window)
		lateN  int
		newest int64 // the latest window end seen
	)
	flush := func(upTo int64) {
		var ends []int64
		for end := range open {
			if end <= upTo {
				ends = append(ends, end)
			}
		}
		sort.Slice(ends, func(i, j int) bool { return ends[i] < ends[j] })
		for _, end := range ends {
			w := open[end]
			delete(open, end)
			users := make([]string, 0, len(w.counts))
			var total int64
			for u, n := range w.counts {
				users = append(users, u)
				total += n
			}
			sort.Slice(users, func(i, j int) bool {
				return w.counts[users[i]] > w.counts[users[j]] || w.counts[users[i]] == w.counts[users[j]] && users[i] < users[j]
			})
			var b strings.Builder
			fmt.Fprintf(&b, "window %s–%s  %d clicks, %d users, %d late so far\n",
				time.UnixMilli(w.start).Format("15:04:05"), time.UnixMilli(w.end).Format("15:04:05"), total, len(users), lateN)
			for _, u := range users {
				fmt.Fprintf(&b, "    %-5s %6d  %s\n", u, w.counts[u], strings.Repeat("█", int(min(60, 60*w.counts[u]/max(total, 1)))))
			}
			fmt.Fprint(c.stdout, b.String())
		}
	}
	add := func(r *kgo.Record) {
		if r.Topic == late {
			lateN++
			return
		}
		var res builtin.WindowCountResult
		if json.Unmarshal(r.Value, &res) != nil {
			return
		}
		w := open[res.WindowEnd]
		if w == nil {
			w = &window{start: res.WindowStart, end: res.WindowEnd, counts: make(map[string]int64)}
			open[res.WindowEnd] = w
		}
		w.counts[res.Key] = res.Count
		newest = max(newest, res.WindowEnd)
	}
	for {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil || f.IsClientClosed() {
			return nil
		}
		f.EachRecord(add)
		// A window's results arrive together (one checkpoint): print a
		// window once a later one shows up, or after a quiet second.
		flush(newest - 1)
		if len(open) > 0 {
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			cl.PollFetches(qctx).EachRecord(add)
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			flush(newest)
		}
	}
}
