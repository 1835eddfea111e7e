package engine

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/kafkaio"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stuckSeconds returns the stall gauge of topic/partition and whether it
// is present.
func stuckSeconds(t *testing.T, e *Engine, topic, partition string) (float64, bool) {
	t.Helper()
	mfs, err := e.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "weir_input_lso_stuck_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["topic"] == topic && labels["partition"] == partition {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within the deadline", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestStalledInputIsVisible: an input partition whose last stable offset
// stays behind its high watermark (a transaction on it stays open) stalls
// a read_committed engine without any error. The engine must say so: a
// gauge and a warning naming the partition, and a line when it moves on.
func TestStalledInputIsVisible(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := kafkaio.StartDevBroker(kafkaio.DevBrokerConfig{Listen: "127.0.0.1:0", Partitions: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "in"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("a")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A transaction that stays open: its producer neither commits nor
	// aborts, and its timeout is far away.
	open, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("in"),
		kgo.TransactionalID("never-ends"), kgo.TransactionTimeout(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(ctx, &kgo.Record{Key: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("b")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	cfg := DefaultConfig()
	cfg.Brokers, cfg.AppID, cfg.StateDir = []string{b.Addr()}, "stall", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e, err := New(builtin.Passthrough("in", "out"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.stalls.after = time.Second
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	waitFor(t, ctx, "weir_input_lso_stuck_seconds{topic=in,partition=0}", func() bool {
		_, ok := stuckSeconds(t, e, "in", "0")
		return ok
	})
	waitFor(t, ctx, "the warning naming in/0", func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "input stalled") && strings.Contains(l, "topic=in") && strings.Contains(l, "partition=0") && strings.Contains(l, "last_stable_offset=1") {
				return true
			}
		}
		return false
	})

	if err := open.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the gauge of in/0 gone after the abort", func() bool {
		_, ok := stuckSeconds(t, e, "in", "0")
		return !ok
	})
	if !strings.Contains(logs.String(), "input stall over") {
		t.Fatalf("no line saying the stall is over; logs:\n%s", logs.String())
	}
}
