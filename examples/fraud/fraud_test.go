package main

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/topologytest"
)

const t0 = int64(1_700_000_000_000)

func newDriver(t *testing.T) (*topologytest.Driver, *topologytest.Input[string, Payment]) {
	t.Helper()
	top, err := Fraud(DefaultConfig()) // limit 3 per minute, 5s out of order
	if err != nil {
		t.Fatal(err)
	}
	d, err := topologytest.New(top, topologytest.AppID("fraud"), topologytest.Partitions(3), topologytest.IdleTimeout(0))
	if err != nil {
		t.Fatal(err)
	}
	return d, topologytest.NewInput(d, "payments", serde.String(), serde.JSON[Payment]())
}

func pay(t *testing.T, in *topologytest.Input[string, Payment], card string, amount float64, ts int64) {
	t.Helper()
	if err := in.PipeKeyed(card, Payment{Card: card, Amount: amount, TS: ts}, ts); err != nil {
		t.Fatal(err)
	}
}

func alerts(t *testing.T, d *topologytest.Driver) []Alert {
	t.Helper()
	recs, err := topologytest.OutputOf(d, "fraud-alerts", serde.String(), serde.JSON[Alert]())
	if err != nil {
		t.Fatal(err)
	}
	var as []Alert
	for _, r := range recs {
		if r.Key != r.Value.Card {
			t.Errorf("alert %+v keyed %q", r.Value, r.Key)
		}
		as = append(as, r.Value)
	}
	return as
}

func TestFraud(t *testing.T) {
	d, in := newDriver(t)
	// Card A: 5 payments in 40s (one out of order): one alert, at the 4th.
	pay(t, in, "A", 10, t0)
	pay(t, in, "A", 20, t0+10_000)
	pay(t, in, "A", 5, t0+30_000)
	pay(t, in, "A", 1, t0+25_000) // out of order: the 4th within the minute
	pay(t, in, "A", 7, t0+40_000)
	// A's state lives in one task: the one its key hashes to.
	p, _ := d.PartitionFor("payments", []byte("A"))
	st, err := d.Store(topology.TaskID{Partition: p}, recentStore)
	if err != nil {
		t.Fatal(err)
	}
	recent, ok, err := state.NewValue(st, serde.JSON[[]Payment]()).Get([]byte("A"))
	if err != nil || !ok || len(recent) != 5 {
		t.Fatalf("A's recent payments: %+v, %v, %v; want 5", recent, ok, err)
	}
	// Card B: 4 payments, each more than a minute after the one before
	// last, so never more than 3 in a window.
	for i, ts := range []int64{0, 40_000, 70_000, 130_000} {
		pay(t, in, "B", float64(i), t0+ts)
	}
	want := []Alert{{Card: "A", Payments: 4, Total: 36, From: t0, To: t0 + 25_000}}
	if got := alerts(t, d); !slices.Equal(got, want) {
		t.Fatalf("alerts = %+v, want %+v", got, want)
	}
	// B's last payment moved its partition's watermark past A's (if
	// they share one) or not; A's burst is over either way.

	// A new burst of A long after: a second alert.
	for i := range 4 {
		pay(t, in, "A", 100, t0+600_000+int64(i)*1000)
	}
	if got := alerts(t, d); len(got) != 2 || got[1].Payments != 4 || got[1].Total != 400 {
		t.Fatalf("alerts = %+v, want a second one for A's new burst", got)
	}
}

// TestFraudForgets: event-time timers drop a card's state once its
// payments leave the window, on every partition the watermark passes.
func TestFraudForgets(t *testing.T) {
	d, in := newDriver(t)
	for _, card := range []string{"A", "B", "C", "D", "E"} {
		pay(t, in, card, 1, t0)
	}
	if n := d.StoreLen(recentStore); n != 5 {
		t.Fatalf("%d cards in %s, want 5", n, recentStore)
	}
	// Push every partition's watermark past t0 + 1 minute (Z's payment
	// on each partition).
	for p := range int32(3) {
		if err := in.Pipe(p, "Z", Payment{Card: "Z", TS: t0 + 2*time.Minute.Milliseconds()}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := d.StoreLen(recentStore); n != 3 {
		t.Fatalf("%d entries in %s, want only Z's (one per partition)", n, recentStore)
	}
	if _, err := d.Lookup(recentStore, []byte("A")); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("A's state: %v, want it gone", err)
	}
	if n := d.StoreLen("rule-timers"); n != 3 {
		t.Fatalf("%d timers, want Z's", n)
	}
}

// TestFraudRestart: state and timers survive a crash, restored from the
// changelog.
func TestFraudRestart(t *testing.T) {
	d, in := newDriver(t)
	pay(t, in, "A", 1, t0)
	pay(t, in, "A", 1, t0+1000)
	pay(t, in, "A", 1, t0+2000)
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := d.Crash(topologytest.RestoreFromChangelog); err != nil {
		t.Fatal(err)
	}
	pay(t, in, "A", 1, t0+3000)
	if got := alerts(t, d); len(got) != 1 || got[0].Payments != 4 {
		t.Fatalf("alerts after restore = %+v, want one for 4 payments", got)
	}
}
