package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
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

// BenchmarkRestore measures what a restart costs with a large keyed state
// (key-count, exactly-once, 8 partitions, WEIR_BENCH_KEYS distinct keys,
// default 1M):
//
//   - ingest: records/s while building the state;
//   - warm: time from process start to the first output of a new record,
//     restarted on its own state directory (replays nothing);
//   - cold: the same on an empty state directory (replays every changelog),
//     and the restore rate in keys/s.
//
// Run it alone, once:
//
//	go test ./integration/ -run '^$' -bench Restore -benchtime 1x -timeout 30m
func BenchmarkRestore(b *testing.B) {
	keys := 1_000_000
	if n, err := strconv.Atoi(os.Getenv("WEIR_BENCH_KEYS")); err == nil && n > 0 {
		keys = n
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	broker, err := kafkaio.StartDevBroker(kafkaio.DevBrokerConfig{Listen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<16))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 8, 1, nil, "in"); err != nil {
		b.Fatal(err)
	}
	for i := range keys {
		cl.Produce(ctx, &kgo.Record{Topic: "in", Key: fmt.Appendf(nil, "key-%09d", i), Value: []byte("x")}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}

	run := func(dir string) (stop func(), started time.Time, e *engine.Engine) {
		cfg := engine.DefaultConfig()
		cfg.Brokers, cfg.AppID, cfg.StateDir, cfg.Logger = []string{broker.Addr()}, "bench-restore", dir, quiet
		e, err := engine.New(builtin.KeyCount("in", "out"), cfg)
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		started = time.Now()
		go func() { done <- e.Run(rctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}, started, e
	}
	// caughtUp waits until the group committed every input record.
	caughtUp := func() {
		for {
			ends, err := adm.ListEndOffsets(ctx, "in")
			if err != nil {
				b.Fatal(err)
			}
			committed, err := adm.FetchOffsets(ctx, "bench-restore")
			if err == nil {
				lag := int64(0)
				ends.Each(func(o kadm.ListedOffset) {
					c, _ := committed.Lookup(o.Topic, o.Partition)
					lag += o.Offset - max(c.At, 0)
				})
				if lag == 0 {
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// firstOutput produces a probe record and returns when its count
	// appears in the output.
	probe := 0
	firstOutput := func(started time.Time) time.Duration {
		probe++
		key := fmt.Sprintf("probe-%d", probe)
		ends, err := adm.ListEndOffsets(ctx, "out")
		if err != nil {
			b.Fatal(err)
		}
		from := make(map[string]map[int32]kgo.Offset)
		ends.Each(func(o kadm.ListedOffset) {
			if from[o.Topic] == nil {
				from[o.Topic] = make(map[int32]kgo.Offset)
			}
			from[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
		})
		rd, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()), kgo.ConsumePartitions(from), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		if err != nil {
			b.Fatal(err)
		}
		defer rd.Close()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "in", Key: []byte(key), Value: []byte("x")}).FirstErr(); err != nil {
			b.Fatal(err)
		}
		for {
			var seen bool
			rd.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen = seen || string(r.Key) == key })
			if seen {
				return time.Since(started)
			}
		}
	}

	b.ResetTimer()
	dirA, dirB := b.TempDir(), b.TempDir()
	stop, started, _ := run(dirA)
	caughtUp()
	ingest := time.Since(started)
	stop()

	stop, started, _ = run(dirA)
	warm := firstOutput(started)
	stop()

	stop, started, e := run(dirB)
	cold := firstOutput(started)
	restored := scrapeMetric(b, e.HTTPAddr(), `weir_restore_records_total{store="count-store"}`)
	stop()
	b.StopTimer()

	b.ReportMetric(float64(keys)/ingest.Seconds(), "ingest-records/s")
	b.ReportMetric(float64(warm.Milliseconds()), "warm-first-record-ms")
	b.ReportMetric(float64(cold.Milliseconds()), "cold-first-record-ms")
	b.ReportMetric(restored, "cold-restored-records")
	b.ReportMetric(restored/cold.Seconds(), "cold-restore-keys/s")
}

// scrapeMetric reads one sample from an engine's /metrics.
func scrapeMetric(b *testing.B, addr, name string) float64 {
	resp, err := httpClient.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			return v
		}
	}
	b.Fatalf("metric %s not found", name)
	return 0
}
