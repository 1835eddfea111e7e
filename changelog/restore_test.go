package changelog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newCluster(t *testing.T, topics ...string) (*kfake.Cluster, []kgo.Opt) {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(1, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// kv is a record to produce; a nil v is a tombstone.
type kv struct {
	k string
	v []byte
}

func val(s string) []byte { return EncodeValue([]byte(s)) }

// produceTxn produces recs in one transaction and commits or aborts it; it
// returns the records' offsets.
func produceTxn(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, commit bool, recs ...kv) []int64 {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for _, r := range recs {
		res := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(r.k), Value: r.v})
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		offs = append(offs, res[0].Record.Offset)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
	return offs
}

// readAll runs ReadRange and returns "offset:key=value" (or "offset:key deleted").
func readAll(t *testing.T, ctx context.Context, opts []kgo.Opt, topic string, from int64) ([]string, RestoreStats) {
	t.Helper()
	var got []string
	stats, err := ReadRange(ctx, opts, topic, 0, from, func(recs []Record) error {
		for _, r := range recs {
			if r.Deleted {
				got = append(got, fmt.Sprintf("%d:%s deleted", r.Offset, r.Key))
			} else {
				got = append(got, fmt.Sprintf("%d:%s=%s", r.Offset, r.Key, r.Value))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ReadRange(from %d): %v", from, err)
	}
	if stats.Records != int64(len(got)) || stats.From != from {
		t.Fatalf("stats %+v for %d records from %d", stats, len(got), from)
	}
	return got, stats
}

func endOffset(t *testing.T, ctx context.Context, opts []kgo.Opt, topic string) (hwm, lso int64) {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	e, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	c, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	eo, _ := e.Lookup(topic, 0)
	co, _ := c.Lookup(topic, 0)
	return eo.Offset, co.Offset
}

func TestReadRangeTransactions(t *testing.T) {
	const topic = "app-s-changelog"
	_, opts := newCluster(t, topic)
	ctx := testCtx(t)
	prod, err := kgo.NewClient(append(opts, kgo.TransactionalID("writer"), kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	o1 := produceTxn(t, ctx, prod, topic, true, kv{"a", val("1")}, kv{"b", val("1")})
	produceTxn(t, ctx, prod, topic, false, kv{"c", val("x")}, kv{"a", nil}) // aborted
	o3 := produceTxn(t, ctx, prod, topic, true, kv{"b", val("2")}, kv{"d", nil})
	committedEnd, _ := endOffset(t, ctx, opts, topic) // the tail is a commit marker

	want := []string{
		fmt.Sprintf("%d:a=1", o1[0]), fmt.Sprintf("%d:b=1", o1[1]),
		fmt.Sprintf("%d:b=2", o3[0]), fmt.Sprintf("%d:d deleted", o3[1]),
	}
	got, stats := readAll(t, ctx, opts, topic, 0)
	if !slices.Equal(got, want) || stats.End != committedEnd {
		t.Fatalf("tail = commit marker: got %q end %d, want %q end %d", got, stats.End, want, committedEnd)
	}
	if committedEnd != o3[1]+2 {
		t.Fatalf("end %d: expected the commit marker right after offset %d", committedEnd, o3[1])
	}

	// From the middle: only what is at or after from.
	got, _ = readAll(t, ctx, opts, topic, o3[0])
	if !slices.Equal(got, want[2:]) {
		t.Fatalf("from %d: got %q, want %q", o3[0], got, want[2:])
	}

	// A tail of aborted data and its abort marker.
	produceTxn(t, ctx, prod, topic, false, kv{"e", val("x")}, kv{"f", val("y")})
	abortedEnd, lso := endOffset(t, ctx, opts, topic)
	if lso != abortedEnd {
		t.Fatalf("LSO %d != HWM %d with no open transaction", lso, abortedEnd)
	}
	got, stats = readAll(t, ctx, opts, topic, 0)
	if !slices.Equal(got, want) || stats.End != abortedEnd {
		t.Fatalf("tail = abort marker: got %q end %d, want %q end %d", got, stats.End, want, abortedEnd)
	}
	// Starting inside the aborted tail delivers nothing and ends.
	got, stats = readAll(t, ctx, opts, topic, committedEnd)
	if len(got) != 0 || stats.End != abortedEnd {
		t.Fatalf("from the aborted tail: got %q end %d", got, stats.End)
	}

	// An open transaction holds the last stable offset: ReadRange reads up
	// to it and does not wait for the transaction.
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte("open"), Value: val("z")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got, stats = readAll(t, ctx, opts, topic, 0)
	if !slices.Equal(got, want) || stats.End != abortedEnd {
		t.Fatalf("with an open transaction: got %q end %d, want %q end %d", got, stats.End, want, abortedEnd)
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}

func TestReadRangeEmpty(t *testing.T) {
	const topic = "app-empty-changelog"
	_, opts := newCluster(t, topic)
	ctx := testCtx(t)
	start := time.Now()
	got, stats := readAll(t, ctx, opts, topic, 0)
	if len(got) != 0 || stats.End != 0 || stats.Records != 0 {
		t.Fatalf("empty topic: %q %+v", got, stats)
	}
	// It must not wait for data: well under the idle probe delay.
	if d := time.Since(start); d > idleProbeAfter {
		t.Fatalf("empty range took %v", d)
	}

	// from == end on a non-empty topic.
	cl, _ := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic))...)
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: val("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got, stats = readAll(t, ctx, opts, topic, 1)
	if len(got) != 0 || stats.End != 1 {
		t.Fatalf("from == end: %q %+v", got, stats)
	}
}

func TestReadRangeCompacted(t *testing.T) {
	const topic = "app-c-changelog"
	c, opts := newCluster(t)
	ctx := testCtx(t)
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, TopicConfigs(), topic); err != nil {
		t.Fatal(err)
	}
	// One record per batch (ProduceSync one at a time).
	for _, r := range []kv{{"a", val("1")}, {"b", val("1")}, {"a", val("2")}, {"b", nil}, {"c", val("1")}, {"a", val("3")}, {"c", val("2")}} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(r.k), Value: r.v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c.Compact()
	// The last batch (c=2 at 6) is not cleanable, so, as in Kafka, it
	// does not supersede c=1 (4) either. a=1, a=2 and b=1 are gone; the
	// tombstone for b (3) stays within delete.retention.ms.
	want := []string{"3:b deleted", "4:c=1", "5:a=3", "6:c=2"}
	got, stats := readAll(t, ctx, opts, topic, 0)
	if !slices.Equal(got, want) || stats.End != 7 {
		t.Fatalf("compacted: got %q end %d, want %q end 7", got, stats.End, want)
	}
	// From inside a compacted gap.
	got, _ = readAll(t, ctx, opts, topic, 1)
	if !slices.Equal(got, want) {
		t.Fatalf("compacted from 1: got %q, want %q", got, want)
	}
}

// TestNothingLeft checks the probe that ends a range whose last records
// are gone, which kfake's compaction (it keeps the last batch) cannot
// produce end to end.
func TestNothingLeft(t *testing.T) {
	const topic = "app-p-changelog"
	_, opts := newCluster(t, topic)
	ctx := testCtx(t)
	prod, err := kgo.NewClient(append(opts, kgo.TransactionalID("p"), kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	o1 := produceTxn(t, ctx, prod, topic, true, kv{"a", val("1")})  // 0, marker 1
	o2 := produceTxn(t, ctx, prod, topic, false, kv{"b", val("1")}) // 2, abort marker 3
	o3 := produceTxn(t, ctx, prod, topic, true, kv{"c", val("1")})  // 4, marker 5
	end, _ := endOffset(t, ctx, opts, topic)

	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cases := []struct {
		name     string
		pos, end int64
		want     bool
	}{
		{"live record ahead", o1[0], end, false},
		{"only a commit marker ahead", o1[0] + 1, o2[0], false},
		{"aborted data, marker beyond end", o2[0], o2[0] + 1, true},
		{"abort marker ahead", o2[0] + 1, end, false},
		{"past the last record", end, end + 5, true},
		{"committed data ahead", o3[0], end, false},
	}
	for _, tc := range cases {
		got, err := nothingLeft(ctx, cl, topic, 0, tc.pos, tc.end)
		if got != tc.want {
			t.Errorf("%s: nothingLeft(%d, %d) = %v (%v), want %v", tc.name, tc.pos, tc.end, got, err, tc.want)
		}
	}
}

func TestReadRangeErrors(t *testing.T) {
	const topic = "app-e-changelog"
	_, opts := newCluster(t, topic)
	ctx := testCtx(t)
	cl, _ := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic))...)
	defer cl.Close()
	for _, v := range [][]byte{val("ok"), []byte("not framed"), val("after")} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	nop := func([]Record) error { return nil }

	_, err := ReadRange(ctx, opts, topic, 0, 0, nop)
	var re *RecordError
	if !errors.As(err, &re) || re.Offset != 1 || !errors.Is(err, ErrBadMagic) {
		t.Fatalf("bad frame: %v, want *RecordError at offset 1 wrapping ErrBadMagic", err)
	}

	boom := errors.New("boom")
	if _, err := ReadRange(ctx, opts, topic, 0, 2, func([]Record) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("fn error: %v", err)
	}
	if _, err := ReadRange(ctx, opts, topic, 3, 0, nop); !errors.Is(err, ErrNoPartition) {
		t.Fatalf("missing partition: %v, want ErrNoPartition", err)
	}
	if _, err := ReadRange(ctx, opts, "no-such-topic", 0, 0, nop); !errors.Is(err, ErrNoPartition) {
		t.Fatalf("missing topic: %v, want ErrNoPartition", err)
	}
	if _, err := ReadRange(ctx, opts, topic, 0, -1, nop); err == nil {
		t.Fatal("negative from accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ReadRange(cctx, opts, topic, 0, 0, nop); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
}

func TestReadRangeBelowLogStart(t *testing.T) {
	const topic = "app-d-changelog"
	_, opts := newCluster(t, topic)
	ctx := testCtx(t)
	cl, _ := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic))...)
	defer cl.Close()
	for i := range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: val("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 3})
	if _, err := adm.DeleteRecords(ctx, offs); err != nil {
		t.Fatal(err)
	}
	got, stats := readAll(t, ctx, opts, topic, 1)
	if want := []string{"3:k3=v", "4:k4=v"}; !slices.Equal(got, want) || stats.End != 5 {
		t.Fatalf("below log start: %q %+v, want %q", got, stats, want)
	}
}
