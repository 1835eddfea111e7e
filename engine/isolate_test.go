package engine

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestIsolationNarrowsToOneRecord drives the isolation state machine
// through the transactions a loop would end: three produce-caused aborts
// of 8 records start isolating; aborts halve the records per transaction
// and commits double them again, until one record alone fails. That
// record is poison: its first dead letter is rejected, the bare one is
// committed, and isolation ends when all 8 records are committed.
func TestIsolationNarrowsToOneRecord(t *testing.T) {
	e := &Engine{cfg: DefaultConfig(), m: newMetrics(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rejected := errors.New("engine: produce to out[0]: MESSAGE_TOO_LARGE")
	recs := make([]*kgo.Record, 8)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "in", Partition: 0, Offset: int64(i)}
	}
	// txn runs records from..to-1 through the open transaction as the
	// loop does (poison records set aside) and ends it.
	txn := func(from, to int, committed bool, produceErr error) {
		t.Helper()
		if got := e.pollLimit(); got < to-from {
			t.Fatalf("records %d..%d: poll limit %d", from, to-1, got)
		}
		for _, r := range recs[from:to] {
			e.iso.txnRecs++
			e.iso.last = r
			if len(e.iso.poison) > 0 {
				if _, err := e.setPoisonAside(&task{}, r); err != nil {
					t.Fatalf("setPoisonAside: %v", err)
				}
			}
		}
		if e.iso.active && !e.isolationDue() && to-from == e.iso.limit {
			t.Fatalf("records %d..%d: the transaction is full (limit %d) but not due", from, to-1, e.iso.limit)
		}
		e.isolationEnded(committed, produceErr)
	}
	// Dead letters stay buffered in a client that reaches no broker.
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	e.cl = cl

	for range isolateAfter - 1 {
		txn(0, 8, false, rejected)
		if e.iso.active {
			t.Fatalf("isolating after %d aborts", e.iso.streak)
		}
	}
	txn(0, 8, false, rejected)
	if !e.iso.active || e.iso.limit != 4 || e.iso.left != 8 {
		t.Fatalf("after %d aborts: active %v limit %d left %d, want true 4 8", isolateAfter, e.iso.active, e.iso.limit, e.iso.left)
	}
	txn(0, 4, true, nil) // record 5 is the culprit
	if e.iso.limit != 4 || e.iso.left != 4 {
		t.Fatalf("after a commit of 4: limit %d left %d, want 4 4", e.iso.limit, e.iso.left)
	}
	txn(4, 8, false, rejected)
	txn(4, 6, false, rejected)
	if e.iso.limit != 1 {
		t.Fatalf("limit %d, want 1", e.iso.limit)
	}
	txn(4, 5, true, nil)
	txn(5, 6, false, rejected)
	if p := e.iso.poison[at(recs[5])]; p == nil || p.err != rejected {
		t.Fatalf("record 5 is not poison: %v", e.iso.poison)
	}
	txn(5, 6, false, errors.New("engine: produce to app-dlq[0]: MESSAGE_TOO_LARGE")) // its dead letter is rejected
	txn(5, 6, true, nil)                                                             // the bare one is not
	if len(e.iso.poison) != 0 {
		t.Fatalf("poison records left after the commit: %v", e.iso.poison)
	}
	var m dto.Metric
	if err := e.m.isolated.WithLabelValues("dlq_bare").Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("isolated records (dlq_bare) %v (%v), want 1", m.GetCounter().GetValue(), err)
	}
	if !e.iso.active {
		t.Fatalf("isolation ended with records 6 and 7 not committed")
	}
	txn(6, 8, true, nil)
	if e.iso.active || e.iso.streak != 0 {
		t.Fatalf("after every record is committed: active %v streak %d", e.iso.active, e.iso.streak)
	}
	if n := cl.BufferedProduceRecords(); n != 2 {
		t.Errorf("dead letters produced %d, want 2 (the full one, then the bare one)", n)
	}
}
