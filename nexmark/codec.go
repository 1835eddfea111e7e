package nexmark

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/weirstream/weir/serde"
)

// Codec returns the Serde of events: a hand-written encoder and decoder of
// the JSON in the package documentation. Decode takes a fast path for the
// shape Encode writes (any key order and whitespace, strings without
// escapes) and falls back to encoding/json otherwise, so it accepts every
// valid JSON encoding of an Event; unknown fields fall back too.
func Codec() serde.Serde[Event] { return codec{} }

type codec struct{}

func (codec) Encode(e Event) ([]byte, error) { return AppendEvent(make([]byte, 0, 256), &e), nil }

func (codec) Decode(b []byte) (Event, error) {
	var e Event
	if err := DecodeEvent(b, &e); err != nil {
		return Event{}, &serde.DecodeError{Serde: "nexmark", Err: err}
	}
	return e, nil
}

// AppendEvent appends the JSON encoding of e to dst.
func AppendEvent(dst []byte, e *Event) []byte {
	dst = append(dst, `{"event_type":`...)
	dst = strconv.AppendInt(dst, int64(e.Type), 10)
	if p := e.Person; p != nil {
		dst = append(dst, `,"person":{"id":`...)
		dst = strconv.AppendInt(dst, p.ID, 10)
		dst = appendField(dst, `,"name":`, p.Name)
		dst = appendField(dst, `,"email_address":`, p.EmailAddress)
		dst = appendField(dst, `,"credit_card":`, p.CreditCard)
		dst = appendField(dst, `,"city":`, p.City)
		dst = appendField(dst, `,"state":`, p.State)
		dst = append(dst, `,"date_time":`...)
		dst = strconv.AppendInt(dst, p.DateTime, 10)
		dst = appendField(dst, `,"extra":`, p.Extra)
		dst = append(dst, '}')
	}
	if a := e.Auction; a != nil {
		dst = append(dst, `,"auction":{"id":`...)
		dst = strconv.AppendInt(dst, a.ID, 10)
		dst = appendField(dst, `,"item_name":`, a.ItemName)
		dst = appendField(dst, `,"description":`, a.Description)
		dst = append(dst, `,"initial_bid":`...)
		dst = strconv.AppendInt(dst, a.InitialBid, 10)
		dst = append(dst, `,"reserve":`...)
		dst = strconv.AppendInt(dst, a.Reserve, 10)
		dst = append(dst, `,"date_time":`...)
		dst = strconv.AppendInt(dst, a.DateTime, 10)
		dst = append(dst, `,"expires":`...)
		dst = strconv.AppendInt(dst, a.Expires, 10)
		dst = append(dst, `,"seller":`...)
		dst = strconv.AppendInt(dst, a.Seller, 10)
		dst = append(dst, `,"category":`...)
		dst = strconv.AppendInt(dst, a.Category, 10)
		dst = appendField(dst, `,"extra":`, a.Extra)
		dst = append(dst, '}')
	}
	if b := e.Bid; b != nil {
		dst = append(dst, `,"bid":`...)
		dst = AppendBid(dst, b)
	}
	return append(dst, '}')
}

// AppendBid appends the JSON encoding of b to dst.
func AppendBid(dst []byte, b *Bid) []byte {
	dst = append(dst, `{"auction":`...)
	dst = strconv.AppendInt(dst, b.Auction, 10)
	dst = append(dst, `,"bidder":`...)
	dst = strconv.AppendInt(dst, b.Bidder, 10)
	dst = append(dst, `,"price":`...)
	dst = strconv.AppendInt(dst, b.Price, 10)
	dst = appendField(dst, `,"channel":`, b.Channel)
	dst = appendField(dst, `,"url":`, b.URL)
	dst = append(dst, `,"date_time":`...)
	dst = strconv.AppendInt(dst, b.DateTime, 10)
	dst = appendField(dst, `,"extra":`, b.Extra)
	return append(dst, '}')
}

func appendField(dst []byte, name, s string) []byte {
	dst = append(dst, name...)
	return appendString(dst, s)
}

// appendString appends s as a JSON string; strings that need escapes go
// through encoding/json.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(dst, q...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// BidCodec returns the Serde of bids (the output of q0 and q1), with the
// same encoding as an Event's "bid" object.
func BidCodec() serde.Serde[Bid] { return bidCodec{} }

type bidCodec struct{}

func (bidCodec) Encode(b Bid) ([]byte, error) { return AppendBid(make([]byte, 0, 160), &b), nil }

func (bidCodec) Decode(b []byte) (Bid, error) {
	d := decoder{b: b}
	var bid Bid
	d.bid(&bid)
	if d.ws(); d.bad || d.i != len(d.b) {
		bid = Bid{}
		if err := json.Unmarshal(b, &bid); err != nil {
			return Bid{}, &serde.DecodeError{Serde: "nexmark bid", Err: err}
		}
	}
	return bid, nil
}

// DecodeEvent decodes the JSON encoding of an event into e. It rejects an
// event with none of person, auction and bid set.
func DecodeEvent(b []byte, e *Event) error {
	d := decoder{b: b}
	d.event(e)
	if d.ws(); d.bad || d.i != len(d.b) {
		*e = Event{}
		if err := json.Unmarshal(b, e); err != nil {
			return err
		}
	}
	switch {
	case e.Bid != nil:
		e.Type = BidEvent
	case e.Auction != nil:
		e.Type = AuctionEvent
	case e.Person != nil:
		e.Type = PersonEvent
	default:
		return fmt.Errorf("nexmark: event_type %d with no person, auction or bid", e.Type)
	}
	return nil
}

// decoder is the fast path: a scanner for the shape AppendEvent writes. On
// anything else it sets bad and the caller falls back to encoding/json.
type decoder struct {
	b   []byte
	i   int
	bad bool
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) consume(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// object calls field for every key of an object until the closing brace.
func (d *decoder) object(field func(key []byte)) {
	if !d.consume('{') {
		d.bad = true
		return
	}
	if d.consume('}') {
		return
	}
	for !d.bad {
		k := d.rawString()
		if d.bad || !d.consume(':') {
			d.bad = true
			return
		}
		d.ws()
		field(k)
		if d.consume(',') {
			continue
		}
		if !d.consume('}') {
			d.bad = true
		}
		return
	}
}

// rawString returns the bytes of a string without escapes.
func (d *decoder) rawString() []byte {
	if !d.consume('"') {
		d.bad = true
		return nil
	}
	start := d.i
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			return s
		case c == '\\' || c < 0x20:
			d.bad = true
			return nil
		}
		d.i++
	}
	d.bad = true
	return nil
}

func (d *decoder) str() string { return string(d.rawString()) }

func (d *decoder) int() int64 {
	neg := false
	if d.i < len(d.b) && d.b[d.i] == '-' {
		neg = true
		d.i++
	}
	start := d.i
	var n uint64
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' && d.i-start < 18 {
		n = n*10 + uint64(d.b[d.i]-'0')
		d.i++
	}
	if d.i == start || (d.i < len(d.b) && (d.b[d.i] >= '0' && d.b[d.i] <= '9' || d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E')) {
		d.bad = true // empty, too long, or not an integer: let encoding/json judge
		return 0
	}
	if neg {
		return -int64(n)
	}
	return int64(n)
}

// null consumes a JSON null.
func (d *decoder) null() bool {
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

func (d *decoder) event(e *Event) {
	d.object(func(k []byte) {
		switch string(k) {
		case "event_type":
			e.Type = EventType(d.int())
		case "bid":
			if !d.null() {
				e.Bid = new(Bid)
				d.bid(e.Bid)
			}
		case "auction":
			if !d.null() {
				e.Auction = new(Auction)
				d.auction(e.Auction)
			}
		case "person":
			if !d.null() {
				e.Person = new(Person)
				d.person(e.Person)
			}
		default:
			d.bad = true
		}
	})
}

func (d *decoder) bid(b *Bid) {
	d.object(func(k []byte) {
		switch string(k) {
		case "auction":
			b.Auction = d.int()
		case "bidder":
			b.Bidder = d.int()
		case "price":
			b.Price = d.int()
		case "channel":
			b.Channel = internChannel(d.rawString())
		case "url":
			b.URL = d.str()
		case "date_time":
			b.DateTime = d.int()
		case "extra":
			b.Extra = d.str()
		default:
			d.bad = true
		}
	})
}

func (d *decoder) auction(a *Auction) {
	d.object(func(k []byte) {
		switch string(k) {
		case "id":
			a.ID = d.int()
		case "item_name":
			a.ItemName = d.str()
		case "description":
			a.Description = d.str()
		case "initial_bid":
			a.InitialBid = d.int()
		case "reserve":
			a.Reserve = d.int()
		case "date_time":
			a.DateTime = d.int()
		case "expires":
			a.Expires = d.int()
		case "seller":
			a.Seller = d.int()
		case "category":
			a.Category = d.int()
		case "extra":
			a.Extra = d.str()
		default:
			d.bad = true
		}
	})
}

func (d *decoder) person(p *Person) {
	d.object(func(k []byte) {
		switch string(k) {
		case "id":
			p.ID = d.int()
		case "name":
			p.Name = d.str()
		case "email_address":
			p.EmailAddress = d.str()
		case "credit_card":
			p.CreditCard = d.str()
		case "city":
			p.City = d.str()
		case "state":
			p.State = d.str()
		case "date_time":
			p.DateTime = d.int()
		case "extra":
			p.Extra = d.str()
		default:
			d.bad = true
		}
	})
}

// internChannel returns the hot channels' names without allocating.
func internChannel(b []byte) string {
	for _, c := range hotChannels {
		if string(b) == c {
			return c
		}
	}
	return string(b)
}

// jsonUnmarshal is encoding/json's decoder, for comparison in benchmarks.
var jsonUnmarshal = json.Unmarshal
