package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/kafkaio"
	"github.com/weirstream/weir/serde/registry/registrytest"
	"github.com/weirstream/weir/topologytest"
)

// TestAvroCountOverKfake runs the Avro window count in the engine against
// a Kafka-protocol broker (kfake over TCP): Avro clicks produced with the
// schema id the test registry gave, spread over four partitions with
// out-of-order timestamps, plus one record that is not Avro. A
// read_committed consumer must see exactly the oracle's results (no
// duplicate, nothing missing), and the bad record in the dead-letter
// topic.
func TestAvroCountOverKfake(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and an engine")
	}
	const app = "avrocount-kfake"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	log := slog.New(slog.DiscardHandler)

	b, err := kafkaio.StartDevBroker(kafkaio.DevBrokerConfig{Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	reg := registrytest.NewServer()
	defer reg.Close()
	cfg := DefaultConfig()

	adm, err := kadm.NewOptClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := adm.CreateTopic(ctx, parts, 1, nil, cfg.Input); err != nil {
		t.Fatal(err)
	}

	// Produce first, then start the engine: it reads from the start.
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	w := writerSerde(t, reg, cfg.Input)
	cs := genClicks(7, 300)
	want := oracle(cs)
	var recs []*kgo.Record
	for i, c := range cs {
		v, err := w.Encode(c.Click)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: cfg.Input, Partition: c.part, Value: v, Timestamp: time.UnixMilli(c.TS)})
		if i == 10 {
			recs = append(recs, &kgo.Record{Topic: cfg.Input, Partition: c.part, Value: []byte(`{"user":"json"}`)})
		}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if n := reg.Requests("POST /subjects/{subject}/versions"); n != 1 {
		t.Fatalf("%d schema registrations, want 1", n)
	}

	top, err := AvroCount(cfg, readerSerde(t, reg))
	if err != nil {
		t.Fatal(err)
	}
	ecfg := engine.DefaultConfig()
	ecfg.Brokers = []string{b.Addr()}
	ecfg.AppID = app
	ecfg.StateDir = t.TempDir()
	ecfg.HTTPAddr = ""
	ecfg.IdleTimeout = 0 // partitions never go idle: the watermark is exact
	ecfg.Logger = log
	e, err := engine.New(top, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("engine Run: %v", err)
		}
	}()

	// Read the results (and the dead-letter topic) as committed.
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()),
		kgo.ConsumeTopics(cfg.Output, topologytest.DLQTopic(app)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var results []Result
	var dlq []*kgo.Record
	deadline := time.Now().Add(60 * time.Second)
	// Keep reading a second past the expected count: a duplicate would
	// show up there.
	var settled time.Time
	for time.Now().Before(deadline) {
		if len(results) >= len(want) && len(dlq) >= 1 {
			if settled.IsZero() {
				settled = time.Now()
			}
			if time.Since(settled) > time.Second {
				break
			}
		}
		pctx, pcancel := context.WithTimeout(ctx, 250*time.Millisecond)
		fs := cons.PollFetches(pctx)
		pcancel()
		if err := fs.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Topic != cfg.Output {
				dlq = append(dlq, r)
				return
			}
			var res Result
			if err := json.Unmarshal(r.Value, &res); err != nil || res.User != string(r.Key) {
				t.Errorf("result %q=%q: %v", r.Key, r.Value, err)
			}
			results = append(results, res)
		})
		select {
		case err := <-done:
			t.Fatalf("engine stopped: %v", err)
		default:
		}
	}
	if got := format(results); !slices.Equal(got, want) {
		t.Fatalf("results (%d) = %q\nwant (%d) %q", len(got), got, len(want), want)
	}
	if len(dlq) != 1 || string(dlq[0].Value) != `{"user":"json"}` {
		t.Fatalf("dead-letter records %v, want the JSON one", dlq)
	}
	for _, h := range dlq[0].Headers {
		if h.Key == engine.HeaderError {
			t.Logf("dead letter: %s", h.Value)
		}
	}
	if n := reg.Requests("GET /schemas/ids/{id}"); n != 1 {
		t.Errorf("%d schema fetches by the engine, want 1 (cached)", n)
	}
	t.Logf("%d clicks, %d results, %d registry requests", len(cs), len(results), reg.Requests(""))
}

// TestHeadersMatchEngine: the driver's dead-letter conventions are the
// engine's.
func TestHeadersMatchEngine(t *testing.T) {
	for _, p := range [][2]string{
		{topologytest.HeaderError, engine.HeaderError},
		{topologytest.HeaderSourceTopic, engine.HeaderSourceTopic},
		{topologytest.HeaderSourcePartition, engine.HeaderSourcePartition},
		{topologytest.HeaderSourceOffset, engine.HeaderSourceOffset},
		{topologytest.DLQTopic("a"), engine.DLQTopic("a")},
		{string(topologytest.OnErrorDLQ), string(engine.OnErrorDLQ)},
		{string(topologytest.OnErrorSkip), string(engine.OnErrorSkip)},
		{string(topologytest.OnErrorFail), string(engine.OnErrorFail)},
	} {
		if p[0] != p[1] {
			t.Errorf("driver %q != engine %q", p[0], p[1])
		}
	}
}
