package nexmark

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// refDecode is DecodeEvent's contract, through encoding/json alone.
func refDecode(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, err
	}
	switch {
	case e.Bid != nil:
		e.Type = BidEvent
	case e.Auction != nil:
		e.Type = AuctionEvent
	case e.Person != nil:
		e.Type = PersonEvent
	default:
		return Event{}, errors.New("no person, auction or bid")
	}
	return e, nil
}

// FuzzDecodeEvent: the fast decoder, sharing strings (Codec) and copying
// them (DecodeEvent), agrees with encoding/json on every input (all fail,
// or all give the same event), and what it decodes encodes to JSON that
// decodes back to the same event.
func FuzzDecodeEvent(f *testing.F) {
	g, _ := NewGenerator(DefaultConfig())
	for n := range int64(60) {
		f.Add(g.AppendJSON(nil, n))
	}
	for _, s := range []string{
		`{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"channel":"a\"b","url":"u","date_time":4,"extra":"\u00e9"}}`,
		`{"event_type":2,"bid":{"auction":01,"bidder":2}}`,
		`{"event_type":300,"bid":{"auction":1}}`,
		`{"event_type":2,"bid":{"auction":1},"bid":null}`,
		`{"event_type":2,"bid":{"url":"a","url":"b","url":"c","url":"d","url":"e","url":"f","url":"g","url":"h","url":"i"}}`,
		"{\"event_type\":2,\"bid\":{\"extra\":\"caf\xc3\xa9 \xff\"}}",
		`{"person":{"id":-0,"name":"0123456789abcdef\u0000"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := refDecode(b)
		var copied Event
		cerr := DecodeEvent(b, &copied)
		got, gerr := Codec().Decode(b) // strings share b
		if (werr == nil) != (gerr == nil) || (werr == nil) != (cerr == nil) {
			t.Fatalf("Decode(%q): error %v, DecodeEvent: %v, encoding/json: %v", b, gerr, cerr, werr)
		}
		if werr != nil {
			return
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(copied, want) {
			t.Fatalf("Decode(%q)\n= %+v\nDecodeEvent: %+v\nencoding/json: %+v", b, got, copied, want)
		}
		enc, err := Codec().Encode(got)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Codec().Decode(enc)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("Encode(%+v) = %s, which decodes to %+v, %v", got, enc, again, err)
		}
	})
}

// TestPlainLen checks the eight-bytes-at-a-time scan against the byte loop
// for every special byte at every position of strings up to 40 bytes, with
// plain bytes of every value around it.
func TestPlainLen(t *testing.T) {
	ref := func(s string) int {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
				return i
			}
		}
		return len(s)
	}
	var plain []byte
	for c := 0x20; c < 0x80; c++ {
		if c != '"' && c != '\\' {
			plain = append(plain, byte(c))
		}
	}
	specials := []byte{'"', '\\', 0, 0x1f, 0x80, 0xff, '\n'}
	for n := range 41 {
		for at := -1; at < n; at++ {
			for _, sp := range specials {
				b := make([]byte, n)
				for i := range b {
					b[i] = plain[(i*7+n)%len(plain)]
				}
				if at >= 0 {
					b[at] = sp
					if at+1 < n {
						b[at+1] = sp // a second special byte just after
					}
				}
				if got, want := plainLen(string(b)), ref(string(b)); got != want {
					t.Fatalf("plainLen(%q) = %d, want %d", b, got, want)
				}
				if got, want := plainLen(b), ref(string(b)); got != want {
					t.Fatalf("plainLen([]byte %q) = %d, want %d", b, got, want)
				}
			}
		}
	}
	if got := plainLen(strings.Repeat("a", 100) + `"`); got != 100 {
		t.Errorf("plainLen(100 a's and a quote) = %d", got)
	}
}

// TestDecodeEventCopies: DecodeEvent's strings do not change with the
// buffer they were decoded from; Codec's share it (the documented
// difference).
func TestDecodeEventCopies(t *testing.T) {
	b := []byte(`{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"channel":"chan","url":"http://u","date_time":4,"extra":"xyz"}}`)
	var copied Event
	if err := DecodeEvent(b, &copied); err != nil {
		t.Fatal(err)
	}
	shared, err := Codec().Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "xyz")
	copy(b[i:], "XYZ")
	if copied.Bid.Extra != "xyz" {
		t.Errorf("DecodeEvent's extra changed with the buffer: %q", copied.Bid.Extra)
	}
	if shared.Bid.Extra != "XYZ" {
		t.Errorf("Codec's extra = %q after the buffer changed: want it to share the buffer", shared.Bid.Extra)
	}
	bid, err := BidCodec().Decode([]byte(`{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","date_time":4,"extra":"e"}`))
	if err != nil || bid.Extra != "e" {
		t.Fatalf("BidCodec().Decode = %+v, %v", bid, err)
	}
}
