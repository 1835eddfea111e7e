package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/kafkaio"
)

// demo runs everything in one process: a dev broker on a free loopback
// port, a generator of clicks with out-of-order event times, the
// click-counting topology, and a reader that prints the results.
func (c *cli) demo(ctx context.Context, args []string) error {
	fs := c.flagSet("demo")
	duration := fs.Duration("duration", 0, "stop after this long (default: run until Ctrl-C)")
	rate := fs.Int("rate", 200, "clicks generated per second")
	users := fs.Int("users", 8, "number of distinct users")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *rate < 1 || *users < 1 {
		return usageError{fmt.Errorf("--rate and --users must be at least 1")}
	}
	log, err := newLogger(c.stderr, *logLevel)
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
	const input, output, partitions = "clicks", "clicks-per-user", 8
	if err := createTopic(ctx, b.Addr(), input, partitions); err != nil {
		return err
	}

	cfg := engine.DefaultConfig()
	cfg.Brokers = []string{b.Addr()}
	cfg.AppID = "weir-demo"
	cfg.Logger = log
	e, err := engine.New(builtin.ClickCount(input, output), cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "weir demo: broker %s, %d clicks/s from %d users into %q (%d partitions)\n", b.Addr(), *rate, *users, input, partitions)
	fmt.Fprintf(c.stdout, "topology (re-key by user, count per user):\n%s\n", indent(e.Plan().String()))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return e.Run(gctx) })
	g.Go(func() error { return generate(gctx, b.Addr(), input, *rate, *users) })
	g.Go(func() error { return c.printCounts(gctx, b.Addr(), output) })
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

func createTopic(ctx context.Context, broker, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %q: %w", topic, err)
	}
	return nil
}

// generate produces JSON clicks at rate per second. Event times lag the
// wall clock by up to 1.5 s at random, so they arrive out of order.
func generate(ctx context.Context, broker, topic string, rate, users int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ProducerLinger(10*time.Millisecond))
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
				v, _ := json.Marshal(click)
				cl.Produce(ctx, &kgo.Record{Topic: topic, Value: v}, nil)
			}
		}
	}
}

// printCounts reads the output with read_committed and prints a table of
// the latest count per user every two seconds.
func (c *cli) printCounts(ctx context.Context, broker, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	latest := make(map[string]int64)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	polled := make(chan kgo.Fetches)
	go func() {
		defer close(polled)
		for {
			f := cl.PollFetches(ctx)
			if ctx.Err() != nil || f.IsClientClosed() {
				return
			}
			select {
			case polled <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case f, ok := <-polled:
			if !ok {
				return nil
			}
			f.EachRecord(func(r *kgo.Record) {
				var uc builtin.UserCount
				if json.Unmarshal(r.Value, &uc) == nil {
					latest[uc.Key] = uc.Count
				}
			})
		case now := <-tick.C:
			if len(latest) == 0 {
				fmt.Fprintf(c.stdout, "%s  waiting for results...\n", now.Format("15:04:05"))
				continue
			}
			users := make([]string, 0, len(latest))
			var total int64
			for u, n := range latest {
				users = append(users, u)
				total += n
			}
			sort.Strings(users)
			var b strings.Builder
			fmt.Fprintf(&b, "%s  clicks per user (total %d)\n", now.Format("15:04:05"), total)
			for _, u := range users {
				fmt.Fprintf(&b, "    %-6s %8d\n", u, latest[u])
			}
			fmt.Fprint(c.stdout, b.String())
		}
	}
}
