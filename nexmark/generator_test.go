package nexmark

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func TestGeneratorModel(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Rate = 1000
	g, err := NewGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50_000
	var kinds [3]int
	hotAuction, prevTS := 0, int64(0)
	for i := range int64(n) {
		e := g.Event(i)
		kinds[e.Type]++
		if e.Type != Type(i) {
			t.Fatalf("event %d: type %v, Type says %v", i, e.Type, Type(i))
		}
		ts := e.Timestamp()
		if want := cfg.BaseTime + i; ts != want { // rate 1000/s: 1 ms per event
			t.Fatalf("event %d: date_time %d, want %d", i, ts, want)
		}
		if ts < prevTS {
			t.Fatalf("event %d: event time went back", i)
		}
		prevTS = ts
		if b := e.Bid; b != nil {
			if b.Price < 100 || b.Price > 100_000_000 {
				t.Fatalf("bid %d: price %d outside [$1, $1M]", i, b.Price)
			}
			if b.Auction == lastBase0AuctionID(i)/hotAuctionRatioID*hotAuctionRatioID+FirstAuctionID {
				hotAuction++
			}
			if b.Auction < FirstAuctionID || b.Bidder < FirstPersonID {
				t.Fatalf("bid %d: ids %d/%d below the first ids", i, b.Auction, b.Bidder)
			}
		}
	}
	if want := [3]int{n / 50, n * 3 / 50, n * 46 / 50}; kinds != want {
		t.Errorf("persons/auctions/bids = %v, want %v (1:3:46)", kinds, want)
	}
	// Hot auction ratio 2: half the bids, plus the cold picks that hit it.
	if share := float64(hotAuction) / float64(kinds[BidEvent]); share < 0.5 || share > 0.6 {
		t.Errorf("hot auction share %.3f, want about 0.5", share)
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	a, _ := NewGenerator(DefaultConfig())
	b, _ := NewGenerator(DefaultConfig())
	cfg := DefaultConfig()
	cfg.Seed = 2
	c, _ := NewGenerator(cfg)
	same := 0
	for _, i := range []int64{0, 1, 4, 999, 7, 3, 123456, 4} { // any order
		x, y, z := a.AppendJSON(nil, i), b.AppendJSON(nil, i), c.AppendJSON(nil, i)
		if !bytes.Equal(x, y) {
			t.Fatalf("event %d differs between generators with the same seed:\n%s\n%s", i, x, y)
		}
		if bytes.Equal(x, z) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("%d events identical under another seed", same)
	}
}

func TestCodec(t *testing.T) {
	g, _ := NewGenerator(DefaultConfig())
	for i := range int64(2000) {
		e := g.Event(i)
		b, err := Codec().Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		var std Event
		if err := json.Unmarshal(b, &std); err != nil {
			t.Fatalf("event %d: encoding/json rejects %s: %v", i, b, err)
		}
		got, err := Codec().Decode(b)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, e) || !reflect.DeepEqual(std, e) {
			t.Fatalf("event %d: round trip\n got %+v\n std %+v\nwant %+v", i, got, std, e)
		}
	}
	// Shapes the fast path does not take still decode.
	for _, tc := range []struct {
		in   string
		want Event
	}{
		{`{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"channel":"a\"b","url":"u","date_time":4,"extra":"\u00e9"}}`,
			Event{Type: BidEvent, Bid: &Bid{Auction: 1, Bidder: 2, Price: 3, Channel: `a"b`, URL: "u", DateTime: 4, Extra: "é"}}},
		{" {\n \"person\" : {\"id\": 7, \"date_time\": 9, \"unknown\": [1,2]}, \"auction\": null, \"event_type\": 0 } ",
			Event{Type: PersonEvent, Person: &Person{ID: 7, DateTime: 9}}},
		{`{"event_type":1,"auction":{"id":5,"date_time":1.5e3}}`, Event{}},
	} {
		got, err := Codec().Decode([]byte(tc.in))
		if tc.want.Bid == nil && tc.want.Person == nil {
			if err == nil {
				t.Errorf("Decode(%s) = %+v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Decode(%s) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{``, `{}`, `{"event_type":2}`, `{"event_type":2,"bid":{"auction":1}`, `[1]`} {
		if _, err := Codec().Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q): want an error", bad)
		}
	}
}
