package kafkaio

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func quietBroker(t *testing.T, cfg DevBrokerConfig) *DevBroker {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b, err := StartDevBroker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func newClient(t *testing.T, b *DevBroker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// readUntil reads partition 0 of topic with read_committed until a record
// with key stop, and returns the values of key k.
func readUntil(t *testing.T, ctx context.Context, b *DevBroker, topic, k, stop string) []string {
	t.Helper()
	cl := newClient(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var vals []string
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %v (values of %s so far %q)", topic, err, k, vals)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch %s: %v", topic, err) })
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			switch string(r.Key) {
			case k:
				vals = append(vals, string(r.Value))
			case stop:
				done = true
			}
		})
		if done {
			return vals
		}
	}
}

// TestDevBrokerCleanerKeepsCommittedValueUnderOpenTransaction: the
// cleaner must not treat records of a transaction that is still open as a
// key's newest value. When that transaction aborts, the committed value
// must still be there.
func TestDevBrokerCleanerKeepsCommittedValueUnderOpenTransaction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := quietBroker(t, DevBrokerConfig{Partitions: 1})
	adm := kadm.NewClient(newClient(t, b))
	compact := "compact"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &compact}, "t"); err != nil {
		t.Fatal(err)
	}

	// Committed: k=committed, then another key, in two batches.
	plain := newClient(t, b, kgo.DefaultProduceTopic("t"))
	for _, r := range []*kgo.Record{{Key: []byte("k"), Value: []byte("committed")}, {Key: []byte("other"), Value: []byte("x")}} {
		if err := plain.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// An open transaction writes k=open and then more, in two batches,
	// so its first batch is not the partition's last.
	txn := newClient(t, b, kgo.DefaultProduceTopic("t"), kgo.TransactionalID("open-txn"))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*kgo.Record{{Key: []byte("k"), Value: []byte("open")}, {Key: []byte("z"), Value: []byte("open")}} {
		if err := txn.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// The cleaner runs while the transaction is open: it must not
	// compact.
	if ran, err := b.Compact(ctx); err != nil || ran {
		t.Fatalf("cleaner with an open transaction: ran %v, err %v; want it to wait", ran, err)
	}

	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	if ran, err := b.Compact(ctx); err != nil || !ran {
		t.Fatalf("cleaner with no open transaction: ran %v, err %v; want it to compact", ran, err)
	}
	if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte("end")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := readUntil(t, ctx, b, "t", "k", "end"); len(got) != 1 || got[0] != "committed" {
		t.Fatalf("after the open transaction aborted, key k reads %q; want [committed]", got)
	}
}

// TestDevBrokerCleanerRunsPeriodically: the cleaner runs on its own, also
// when the broker advertises an address this process cannot reach.
func TestDevBrokerCleanerRunsPeriodically(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := quietBroker(t, DevBrokerConfig{Partitions: 1, CleanerInterval: 10 * time.Millisecond, Advertise: "unreachable.invalid:9092"})
	for b.cl.ran.Load() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the cleaner never ran")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestDevBrokerAbandonedTransactionTimesOut: a transaction whose producer
// vanished (no EndTxn, no new InitProducerID) blocks read_committed readers
// of its partition only until its timeout: the broker aborts it, and the
// records after it are read.
func TestDevBrokerAbandonedTransactionTimesOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := quietBroker(t, DevBrokerConfig{Partitions: 1})
	if _, err := kadm.NewClient(newClient(t, b)).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	abandoned := newClient(t, b, kgo.DefaultProduceTopic("t"), kgo.TransactionalID("vanished"), kgo.TransactionTimeout(2*time.Second))
	if err := abandoned.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := abandoned.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("abandoned")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	plain := newClient(t, b, kgo.DefaultProduceTopic("t"))
	for _, r := range []*kgo.Record{{Key: []byte("k"), Value: []byte("after")}, {Key: []byte("end")}} {
		if err := plain.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if got := readUntil(t, ctx, b, "t", "k", "end"); len(got) != 1 || got[0] != "after" {
		t.Fatalf("key k reads %q; want [after]", got)
	}
}

// TestDevBrokerCleanerKeepsAbortMarkers: compaction drops an aborted
// transaction's records; the producer's later committed records must
// still be read.
func TestDevBrokerCleanerKeepsAbortMarkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := quietBroker(t, DevBrokerConfig{Partitions: 1})
	compact := "compact"
	if _, err := kadm.NewClient(newClient(t, b)).CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &compact}, "t"); err != nil {
		t.Fatal(err)
	}
	p := newClient(t, b, kgo.DefaultProduceTopic("t"), kgo.TransactionalID("p"))
	txn := func(k, v string, end kgo.TransactionEndTry) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := p.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	plain := newClient(t, b, kgo.DefaultProduceTopic("t"))
	if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte("first"), Value: []byte("kept")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txn("k", "aborted", kgo.TryAbort)
	for _, v := range []string{"1", "2"} {
		if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte("other"), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if ran, err := b.Compact(ctx); err != nil || !ran {
		t.Fatalf("compact: ran %v, err %v", ran, err)
	}
	txn("k", "committed", kgo.TryCommit)
	if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte("end")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := readUntil(t, ctx, b, "t", "k", "end"); len(got) != 1 || got[0] != "committed" {
		t.Fatalf("key k reads %q; want [committed]", got)
	}
}
