package nexmark

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runQuery runs query q over events [0, n) at event-time rate and returns
// the decoded output values (JSON) and the bids of the input.
func runQuery(t *testing.T, q string, n int64, rate float64, cfg RunConfig) ([]json.RawMessage, []Bid) {
	t.Helper()
	gcfg := DefaultConfig()
	gcfg.Rate = rate
	g, err := NewGenerator(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	var bids []Bid
	for i := range n {
		if e := g.Event(i); e.Bid != nil {
			bids = append(bids, *e.Bid)
		}
	}
	top, err := Topology(q, QueryConfig{Output: "out"})
	if err != nil {
		t.Fatal(err)
	}
	var out []json.RawMessage
	cfg.Output = func(r *kgo.Record) {
		if r.Topic != "out" {
			t.Errorf("record to %q: %s", r.Topic, r.Value)
			return
		}
		out = append(out, json.RawMessage(r.Value))
	}
	stats, err := Run(context.Background(), top, []Input{g.Input("nexmark", n, 4, true)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Input != n+4 {
		t.Errorf("input %d records, want %d", stats.Input, n+4)
	}
	return out, bids
}

func decodeAll[T any](t *testing.T, raw []json.RawMessage) []T {
	t.Helper()
	out := make([]T, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			t.Fatalf("output %s: %v", r, err)
		}
	}
	return out
}

func TestStatelessQueries(t *testing.T) {
	raw, bids := runQuery(t, "q0", 5000, 1000, RunConfig{})
	if got := decodeAll[Bid](t, raw); !sameMultiset(got, bids) {
		t.Errorf("q0: %d outputs, want the %d bids", len(got), len(bids))
	}
	raw, _ = runQuery(t, "q1", 5000, 1000, RunConfig{})
	var want []Bid
	for _, b := range bids {
		b.Price = b.Price * 908 / 1000
		want = append(want, b)
	}
	if got := decodeAll[Bid](t, raw); !sameMultiset(got, want) {
		t.Errorf("q1: outputs are not the bids in euros")
	}
	raw, _ = runQuery(t, "q2", 50000, 1000, RunConfig{})
	var want2 []AuctionPrice
	for _, b := range bids50k(t) {
		if b.Auction%123 == 0 {
			want2 = append(want2, AuctionPrice{b.Auction, b.Price})
		}
	}
	if got := decodeAll[AuctionPrice](t, raw); len(want2) == 0 || !sameMultiset(got, want2) {
		t.Errorf("q2: got %d, want %d selected bids", len(got), len(want2))
	}
}

func bids50k(t *testing.T) []Bid {
	g, _ := NewGenerator(func() Config { c := DefaultConfig(); c.Rate = 1000; return c }())
	var bids []Bid
	for i := range int64(50000) {
		if e := g.Event(i); e.Bid != nil {
			bids = append(bids, *e.Bid)
		}
	}
	return bids
}

func sameMultiset[T any](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(v T) string { s, _ := json.Marshal(v); return string(s) }
	m := make(map[string]int)
	for _, v := range a {
		m[key(v)]++
	}
	for _, v := range b {
		m[key(v)]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// The windowed queries against oracles computed from the bids, at 1,000
// events/s of event time (30 s of events: several windows close before
// the end marker closes the rest), with in-memory and with Badger state.
func TestWindowedQueries(t *testing.T) {
	const n, rate = 30_000, 1000
	for _, st := range []string{"memory", "badger"} {
		cfg := func() RunConfig {
			if st == "badger" {
				return RunConfig{StateDir: t.TempDir()}
			}
			return RunConfig{}
		}
		t.Run("q5/"+st, func(t *testing.T) {
			raw, bids := runQuery(t, "q5", n, rate, cfg())
			got := decodeAll[HotItems](t, raw)
			want := oracleQ5(bids)
			sortBy(got, func(h HotItems) int64 { return h.WindowStart })
			if !reflect.DeepEqual(got, want) {
				t.Errorf("q5: got %d windows, want %d\n got %v\nwant %v", len(got), len(want), got, want)
			}
		})
		t.Run("q7/"+st, func(t *testing.T) {
			raw, bids := runQuery(t, "q7", n, rate, cfg())
			got := decodeAll[HighestBid](t, raw)
			sortBy(got, func(h HighestBid) int64 { return h.WindowStart })
			want := oracleQ7(bids)
			if len(got) != len(want) {
				t.Fatalf("q7: %d windows, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i].WindowStart != want[i].WindowStart || got[i].Bid.Price != want[i].Bid.Price {
					t.Errorf("q7 window %d: %+v, want %+v", i, got[i], want[i])
				}
			}
		})
		t.Run("q11/"+st, func(t *testing.T) {
			raw, bids := runQuery(t, "q11", n, rate, cfg())
			if got, want := decodeAll[BidderCount](t, raw), oracleQ11(bids); !sameMultiset(got, want) {
				t.Errorf("q11: %d sessions, want %d", len(got), len(want))
			}
		})
	}
}

// TestQ12 runs with a clock that stands still, so every bid of a bidder is
// in one processing-time window, which DrainTimers then closes.
func TestQ12(t *testing.T) {
	now := time.UnixMilli(1_800_000_003_000)
	raw, bids := runQuery(t, "q12", 20_000, 1000, RunConfig{Now: func() time.Time { return now }, DrainTimers: time.Minute, StateDir: t.TempDir()})
	counts := make(map[int64]int64)
	for _, b := range bids {
		counts[b.Bidder]++
	}
	start := now.UnixMilli() / 10_000 * 10_000
	var want []BidderCount
	for bidder, c := range counts {
		want = append(want, BidderCount{Bidder: bidder, BidCount: c, WindowStart: start, WindowEnd: start + 10_000})
	}
	if got := decodeAll[BidderCount](t, raw); !sameMultiset(got, want) {
		t.Errorf("q12: got %v, want %v", got, want)
	}
}

func TestQ3NotSupported(t *testing.T) {
	if _, err := Topology("q3", QueryConfig{}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("q3: %v, want ErrNotSupported", err)
	}
	if _, err := Topology("q99", QueryConfig{}); !errors.Is(err, ErrUnknownQuery) {
		t.Errorf("q99: %v, want ErrUnknownQuery", err)
	}
	for _, d := range Topologies() {
		fs := flag.NewFlagSet(d.Name, flag.ContinueOnError)
		build := d.Define(fs)
		if err := fs.Parse([]string{"--input", "in", "--output", "out"}); err != nil {
			t.Fatal(err)
		}
		top, err := build()
		if err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		if _, err := top.Build("app"); err != nil {
			t.Errorf("%s: %v", d.Name, err)
		}
	}
}

func sortBy[T any](s []T, key func(T) int64) {
	sort.SliceStable(s, func(i, j int) bool { return key(s[i]) < key(s[j]) })
}

func oracleQ5(bids []Bid) []HotItems {
	counts := make(map[int64]map[int64]int64) // window start -> auction -> count
	for _, b := range bids {
		last := b.DateTime - b.DateTime%2000
		for s := last - 8000; s <= last; s += 2000 {
			if counts[s] == nil {
				counts[s] = make(map[int64]int64)
			}
			counts[s][b.Auction]++
		}
	}
	var out []HotItems
	for s, m := range counts {
		h := HotItems{WindowStart: s, WindowEnd: s + 10000, Count: -1}
		for a, c := range m {
			switch {
			case c > h.Count:
				h.Count, h.Auctions = c, []int64{a}
			case c == h.Count:
				h.Auctions = append(h.Auctions, a)
			}
		}
		sort.Slice(h.Auctions, func(i, j int) bool { return h.Auctions[i] < h.Auctions[j] })
		out = append(out, h)
	}
	sortBy(out, func(h HotItems) int64 { return h.WindowStart })
	return out
}

func oracleQ7(bids []Bid) []HighestBid {
	m := make(map[int64]Bid)
	for _, b := range bids {
		s := b.DateTime - b.DateTime%10000
		if cur, ok := m[s]; !ok || b.Price > cur.Price {
			m[s] = b
		}
	}
	var out []HighestBid
	for s, b := range m {
		out = append(out, HighestBid{WindowStart: s, WindowEnd: s + 10000, Bid: b})
	}
	sortBy(out, func(h HighestBid) int64 { return h.WindowStart })
	return out
}

func oracleQ11(bids []Bid) []BidderCount {
	by := make(map[int64][]int64)
	for _, b := range bids {
		by[b.Bidder] = append(by[b.Bidder], b.DateTime)
	}
	var out []BidderCount
	for bidder, ts := range by {
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		cur := BidderCount{Bidder: bidder, WindowStart: ts[0]}
		last := ts[0]
		for _, x := range ts {
			if x-last >= 10000 {
				cur.WindowEnd = last + 10000
				out = append(out, cur)
				cur = BidderCount{Bidder: bidder, WindowStart: x}
			}
			cur.BidCount++
			last = x
		}
		cur.WindowEnd = last + 10000
		out = append(out, cur)
	}
	return out
}
