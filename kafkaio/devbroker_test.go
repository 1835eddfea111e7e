package kafkaio

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
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

// TestDevBrokerCleanerUnderTransactionalLoad: two transactional producers
// write a few of their own keys at a time to a compacted topic, committing
// or aborting at random, while the cleaner runs again and again. At the end every key
// reads, read_committed, as its producer's last committed value, and no
// aborted value is ever read.
func TestDevBrokerCleanerUnderTransactionalLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	b := quietBroker(t, DevBrokerConfig{Partitions: 1, CleanerInterval: -1})
	compact := "compact"
	if _, err := kadm.NewClient(newClient(t, b)).CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &compact}, "t"); err != nil {
		t.Fatal(err)
	}
	const txns, keys = 150, 8
	type result struct {
		last    map[string]string // key -> last committed value
		aborted map[string]bool   // values written by aborted transactions
		err     error
	}
	// Each record produced asks for a compaction: the cleaner runs while
	// the other producer's transactions are open, aborting or committing.
	tick := make(chan struct{}, 1)
	produce := func(name string, seed uint64) result {
		res := result{last: map[string]string{}, aborted: map[string]bool{}}
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("t"), kgo.TransactionalID(name))
		if err != nil {
			res.err = err
			return res
		}
		defer cl.Close()
		rng := rand.New(rand.NewPCG(seed, 1))
		for i := range txns {
			if err := cl.BeginTransaction(); err != nil {
				res.err = err
				return res
			}
			vals := map[string]string{}
			// A few of the keys each time, so that a key's last
			// write is often an aborted one.
			for _, k := range rng.Perm(keys)[:1+rng.IntN(2)] {
				key, val := fmt.Sprintf("%s-%d", name, k), fmt.Sprintf("%s-%d-%d", name, i, k)
				vals[key] = val
				// One batch per record: aborted and open records
				// land before the partition's last batch.
				if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: []byte(val)}).FirstErr(); err != nil {
					res.err = err
					return res
				}
				select {
				case tick <- struct{}{}:
				default:
				}
			}
			end := kgo.TryCommit
			if rng.IntN(3) == 0 {
				end = kgo.TryAbort
			}
			if err := cl.EndTransaction(ctx, end); err != nil {
				res.err = err
				return res
			}
			for k, v := range vals {
				if end == kgo.TryCommit {
					res.last[k] = v
				} else {
					res.aborted[v] = true
				}
			}
		}
		return res
	}
	results := make(chan result, 2)
	for i, name := range []string{"p", "q"} {
		go func() { results <- produce(name, uint64(i)) }()
	}
	var got []result
	for len(got) < 2 {
		select {
		case r := <-results:
			if r.err != nil {
				t.Fatal(r.err)
			}
			got = append(got, r)
		case <-tick:
			if _, err := b.Compact(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	compactions := b.cl.ran.Load()
	if _, err := b.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if err := newClient(t, b, kgo.DefaultProduceTopic("t")).ProduceSync(ctx, &kgo.Record{Key: []byte("end")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rd := newClient(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"t": {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	last := map[string]string{}
	for done := false; !done; {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading: %v", ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == "end" {
				done = true
				return
			}
			for _, g := range got {
				if g.aborted[string(r.Value)] {
					t.Errorf("read %s=%s, written by an aborted transaction", r.Key, r.Value)
				}
			}
			last[string(r.Key)] = string(r.Value)
		})
	}
	want := map[string]string{}
	for _, g := range got {
		maps.Copy(want, g.last)
	}
	if !maps.Equal(last, want) {
		t.Fatalf("after %d compactions under load, the keys read %v; want %v", compactions, last, want)
	}
	t.Logf("%d compactions under load", compactions)
}
