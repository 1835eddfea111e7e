package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/kafkaio"
)

// BenchmarkGuarantees runs window-count over the same pre-loaded input
// (WEIR_BENCH_EVENTS, default 1M JSON clicks over 8 partitions, 1,000
// users) in one process with an in-process dev broker, once per mode:
// at_least_once and exactly_once at 100ms and 1s commit intervals. It
// reports each mode's events/s (from joining the group to the last input
// committed; the tail includes up to one commit interval per sub-topology,
// since downstream tasks read repartition records only once committed), the ratio of each exactly-once run to
// at-least-once, and checkpoint duration p50/p99 (from the engine's
// histogram, so bucket upper bounds). Then it measures end-to-end latency of
// key-count under exactly-once at half the rate key-count sustains: the
// time from a record's produce timestamp to its count being readable with
// read_committed.
//
//	go test ./integration/ -run '^$' -bench Guarantees -benchtime 1x -timeout 30m
func BenchmarkGuarantees(b *testing.B) {
	events := 1_000_000
	if n, err := strconv.Atoi(os.Getenv("WEIR_BENCH_EVENTS")); err == nil && n > 0 {
		events = n
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	broker, err := kafkaio.StartDevBroker(kafkaio.DevBrokerConfig{Listen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(1<<16), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	for _, topic := range []string{"clicks", "keys"} {
		if _, err := adm.CreateTopic(ctx, 8, 1, nil, topic); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for range events {
		ts += int64(rng.IntN(3)) // ~1.5 ms per event: 10 s windows hold ~6,700 events
		v := fmt.Appendf(nil, `{"user":"u%d","page":"/p","ts":%d}`, rng.IntN(1000), ts-rng.Int64N(1500))
		cl.Produce(ctx, &kgo.Record{Topic: "clicks", Value: v}, nil)
	}
	// The far-future record per partition closes every window.
	for p := range int32(8) {
		cl.Produce(ctx, &kgo.Record{Topic: "clicks", Partition: p, Value: fmt.Appendf(nil, `{"user":"end","ts":%d}`, ts+1e9)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}

	type mode struct {
		name      string
		guarantee engine.Guarantee
		interval  time.Duration
	}
	modes := []mode{
		{"at_least_once/100ms", engine.AtLeastOnce, 100 * time.Millisecond},
		{"exactly_once/100ms", engine.ExactlyOnce, 100 * time.Millisecond},
		{"exactly_once/1s", engine.ExactlyOnce, time.Second},
	}
	b.ResetTimer()
	rates := make(map[string]float64)
	for i, m := range modes {
		app := fmt.Sprintf("bench-g%d", i)
		cfg := engine.DefaultConfig()
		cfg.Brokers, cfg.AppID, cfg.StateDir, cfg.Logger = []string{broker.Addr()}, app, b.TempDir(), quiet
		cfg.Guarantee, cfg.CommitInterval = m.guarantee, m.interval
		wc := builtin.DefaultWindowCount()
		wc.Output = app + "-out"
		top, err := builtin.WindowCount(wc)
		if err != nil {
			b.Fatal(err)
		}
		e, err := engine.New(top, cfg)
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- e.Run(rctx) }()
		for !e.Ready() {
			time.Sleep(5 * time.Millisecond)
		}
		start := time.Now()
		waitCommitted(b, adm, app, "clicks", app+"-count-repartition")
		elapsed := time.Since(start)
		p50, p99 := histogramQuantiles(b, e.HTTPAddr(), "weir_checkpoint_duration_seconds", `outcome="ok"`)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		rates[m.name] = float64(events) / elapsed.Seconds()
		b.ReportMetric(rates[m.name], m.name+"-events/s")
		b.ReportMetric(p50*1000, m.name+"-checkpoint-p50-ms")
		b.ReportMetric(p99*1000, m.name+"-checkpoint-p99-ms")
	}
	b.ReportMetric(rates["exactly_once/100ms"]/rates["at_least_once/100ms"], "eos100ms/alo")
	b.ReportMetric(rates["exactly_once/1s"]/rates["at_least_once/100ms"], "eos1s/alo")

	// Latency: key-count, exactly-once, 100ms, at half its maximum rate.
	maxRate := keyCountRate(b, broker, adm, cl, quiet)
	p50, p99 := keyCountLatency(b, broker, adm, quiet, maxRate/2)
	b.StopTimer()
	b.ReportMetric(maxRate, "keycount-eos-max-records/s")
	b.ReportMetric(p50, "keycount-eos-latency-p50-ms")
	b.ReportMetric(p99, "keycount-eos-latency-p99-ms")
}

// waitCommitted waits until group app has committed the end of every
// partition of its input topic, then, for each later topic (repartition
// topics, which keep receiving watermark control records), everything
// written before that moment.
func waitCommitted(b *testing.B, adm *kadm.Client, app string, input string, later ...string) {
	ctx := context.Background()
	caughtUp := func(topic string, upTo map[int32]int64) bool {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			b.Fatal(err)
		}
		committed, err := adm.FetchOffsets(ctx, app)
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			end := o.Offset
			if upTo != nil {
				end = upTo[o.Partition]
			}
			c, found := committed.Lookup(o.Topic, o.Partition)
			// A transaction marker may follow the last committed record.
			if end > 0 && (!found || c.At < end-1) {
				ok = false
			}
		})
		return ok
	}
	for !caughtUp(input, nil) {
		time.Sleep(50 * time.Millisecond)
	}
	for _, topic := range later {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			b.Fatal(err)
		}
		upTo := make(map[int32]int64)
		ends.Each(func(o kadm.ListedOffset) { upTo[o.Partition] = o.Offset })
		for !caughtUp(topic, upTo) {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// histogramQuantiles estimates p50 and p99 of a Prometheus histogram from
// an engine's /metrics as the upper bounds of the buckets they fall in.
func histogramQuantiles(b *testing.B, addr, name, label string) (p50, p99 float64) {
	resp, err := httpClient.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	type bucket struct{ le, n float64 }
	var buckets []bucket
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"_bucket{") || !strings.Contains(line, label) {
			continue
		}
		i := strings.Index(line, `le="`)
		j := strings.Index(line[i+4:], `"`)
		le, _ := strconv.ParseFloat(line[i+4:i+4+j], 64)
		n, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if line[i+4:i+4+j] == "+Inf" {
			le = math.Inf(1)
		}
		buckets = append(buckets, bucket{le, n})
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].le < buckets[j].le })
	if len(buckets) == 0 || buckets[len(buckets)-1].n == 0 {
		return 0, 0
	}
	total := buckets[len(buckets)-1].n
	q := func(f float64) float64 {
		for _, bk := range buckets {
			if bk.n >= f*total {
				return bk.le
			}
		}
		return math.Inf(1)
	}
	return q(0.5), q(0.99)
}

// keyCountRate pre-loads 300k records with 10k keys and returns the rate at
// which key-count (exactly-once, 100ms) drains them.
func keyCountRate(b *testing.B, broker *kafkaio.DevBroker, adm *kadm.Client, cl *kgo.Client, log *slog.Logger) float64 {
	const n = 300_000
	ctx := context.Background()
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Topic: "keys", Key: fmt.Appendf(nil, "k%d", i%10_000), Value: []byte("x")}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	cfg := engine.DefaultConfig()
	cfg.Brokers, cfg.AppID, cfg.StateDir, cfg.Logger = []string{broker.Addr()}, "bench-kc-rate", b.TempDir(), log
	e, err := engine.New(builtin.KeyCount("keys", "bench-kc-rate-out"), cfg)
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- e.Run(rctx) }()
	waitCommitted(b, adm, "bench-kc-rate", "keys")
	rate := n / time.Since(start).Seconds()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return rate
}

// keyCountLatency runs key-count on a fresh topic while a producer writes at
// rate records/s for 10 s, and returns p50 and p99 of produce-to-readable
// latency in milliseconds.
func keyCountLatency(b *testing.B, broker *kafkaio.DevBroker, adm *kadm.Client, log *slog.Logger, rate float64) (p50, p99 float64) {
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 8, 1, nil, "lat-in"); err != nil {
		b.Fatal(err)
	}
	cfg := engine.DefaultConfig()
	cfg.Brokers, cfg.AppID, cfg.StateDir, cfg.Logger = []string{broker.Addr()}, "bench-lat", b.TempDir(), log
	e, err := engine.New(builtin.KeyCount("lat-in", "lat-out"), cfg)
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(rctx) }()
	for !e.Ready() {
		time.Sleep(20 * time.Millisecond)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()), kgo.ConsumeTopics("lat-out"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	pr, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer pr.Close()

	const dur = 10 * time.Second
	total := int(rate * dur.Seconds())
	go func() {
		start := time.Now()
		for i := range total {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			time.Sleep(time.Until(due))
			// The record's timestamp is set now; key-count keeps it.
			pr.Produce(ctx, &kgo.Record{Topic: "lat-in", Key: fmt.Appendf(nil, "k%d", i%1000), Value: []byte("x"), Timestamp: time.Now()}, nil)
		}
	}()
	var lat []float64
	deadline := time.Now().Add(dur + 30*time.Second)
	for len(lat) < total && time.Now().Before(deadline) {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		rd.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			lat = append(lat, float64(time.Since(r.Timestamp).Microseconds())/1000)
		})
		pcancel()
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if len(lat) != total {
		b.Fatalf("read %d of %d latency samples", len(lat), total)
	}
	sort.Float64s(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}
