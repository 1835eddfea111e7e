package nexmark

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"unsafe"

	"github.com/weirstream/weir/serde"
)

// Codec returns the Serde of events: a hand-written encoder and decoder of
// the JSON in the package documentation. Decode takes a fast path for the
// shape Encode writes (the keys in Encode's order first, then any order and
// whitespace; ASCII strings without escapes) and falls back to
// encoding/json otherwise, so it accepts every valid JSON encoding of an
// Event; unknown fields fall back too.
//
// On the fast path the strings of a decoded event share the bytes Decode
// was given instead of copying them (as bytedance/sonic does by default):
// those bytes must not change while the event is in use. weir never
// changes a record's bytes (see the serde package), so a topology may use
// events freely; code that decodes from a buffer it reuses must copy the
// strings it keeps. A kept event also keeps its record's bytes in memory.
func Codec() serde.Serde[Event] { return codec{} }

type codec struct{}

func (codec) Encode(e Event) ([]byte, error) {
	return AppendEvent(make([]byte, 0, eventSize(&e)), &e), nil
}

// Upper bounds of encoded sizes (strings without escapes), so that an
// encoder allocates its buffer once: the names, punctuation and at most 20
// bytes per integer.
const (
	bidFixed     = len(`{"auction":,"bidder":,"price":,"channel":"","url":"","date_time":,"extra":""}`) + 4*20
	personFixed  = len(`,"person":{"id":,"name":"","email_address":"","credit_card":"","city":"","state":"","date_time":,"extra":""}`) + 2*20
	auctionFixed = len(`,"auction":{"id":,"item_name":"","description":"","initial_bid":,"reserve":,"date_time":,"expires":,"seller":,"category":,"extra":""}`) + 7*20
	eventFixed   = len(`{"event_type":,"bid":}`) + 4
)

func bidSize(b *Bid) int { return bidFixed + len(b.Channel) + len(b.URL) + len(b.Extra) }

func eventSize(e *Event) int {
	n := eventFixed
	if p := e.Person; p != nil {
		n += personFixed + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State) + len(p.Extra)
	}
	if a := e.Auction; a != nil {
		n += auctionFixed + len(a.ItemName) + len(a.Description) + len(a.Extra)
	}
	if b := e.Bid; b != nil {
		n += bidSize(b)
	}
	return n
}

func (codec) Decode(b []byte) (Event, error) {
	var e Event
	if err := decodeEvent(b, &e, true); err != nil {
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

// appendString appends s as a JSON string; strings that need escapes (or
// are not ASCII) go through encoding/json.
func appendString(dst []byte, s string) []byte {
	if plainLen(s) < len(s) {
		q, _ := json.Marshal(s)
		return append(dst, q...)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// plainLen returns the length of the longest prefix of s whose bytes are
// plain in a JSON string: printable ASCII other than '"' and '\\'. It
// looks at eight bytes at a time: on strings of Nexmark's lengths (tens to
// hundreds of bytes) the byte loop was the decoder's largest cost.
func plainLen[T string | []byte](s T) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		q := x ^ ('"' * ones)
		b := x ^ ('\\' * ones)
		// A byte's high bit is set in m when the byte is '"', '\\',
		// below 0x20 or from 0x80 (borrows may set it in bytes above
		// such a byte too, never below: the lowest one is exact).
		m := ((q - ones) &^ q) | ((b - ones) &^ b) | (x - 0x20*ones) | x
		if m &= highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return i
		}
	}
	return i
}

// BidCodec returns the Serde of bids (the output of q0 and q1), with the
// same encoding as an Event's "bid" object.
func BidCodec() serde.Serde[Bid] { return bidCodec{} }

type bidCodec struct{}

func (bidCodec) Encode(b Bid) ([]byte, error) {
	return AppendBid(make([]byte, 0, bidSize(&b)), &b), nil
}

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

// DecodeEvent decodes the JSON encoding of an event into e, copying its
// strings (Codec's Decode shares b's bytes instead). It rejects an event
// with none of person, auction and bid set.
func DecodeEvent(b []byte, e *Event) error { return decodeEvent(b, e, false) }

func decodeEvent(b []byte, e *Event, share bool) error {
	d := decoder{b: b, share: share}
	d.event(e)
	if d.ws(); d.bad || d.i != len(d.b) {
		var std Event // not e: e would escape to the heap on the fast path too
		if err := json.Unmarshal(b, &std); err != nil {
			*e = Event{}
			return err
		}
		*e = std
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
	// share: strings share b's bytes (see Codec) instead of copying them.
	share bool
}

// str sets *dst to the plain string at the position.
func (d *decoder) str(dst *string) {
	if raw := d.rawString(); d.share {
		*dst = share(raw)
	} else {
		*dst = string(raw)
	}
}

// share returns b as a string without copying: b must not change while
// the string is in use.
func share(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

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
	if d.i < len(d.b) && d.b[d.i] != c {
		d.ws() // only when c is not next: what we write has no whitespace
	}
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// lit consumes s if the input continues with it.
func (d *decoder) lit(s string) bool {
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
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

// rawString returns the bytes of a plain string (see plainLen); any other
// string is for encoding/json to judge.
func (d *decoder) rawString() []byte {
	if !d.consume('"') {
		d.bad = true
		return nil
	}
	start := d.i
	d.i += plainLen(d.b[d.i:])
	if d.i == len(d.b) || d.b[d.i] != '"' {
		d.bad = true
		return nil
	}
	d.i++
	return d.b[start : d.i-1]
}

func (d *decoder) int() int64 {
	neg := false
	if d.i < len(d.b) && d.b[d.i] == '-' {
		neg = true
		d.i++
	}
	start := d.i
	if len(d.b)-d.i > 1 && d.b[d.i] == '0' && d.b[d.i+1] >= '0' && d.b[d.i+1] <= '9' {
		d.bad = true // a leading zero: not JSON
		return 0
	}
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
	if d.eventInOrder(e) {
		return
	}
	d.i, d.bad, *e = 0, false, Event{}
	d.object(func(k []byte) {
		switch string(k) {
		case "event_type":
			t := d.int()
			if t < math.MinInt8 || t > math.MaxInt8 {
				d.bad = true // encoding/json's range error
			}
			e.Type = EventType(t)
		case "bid":
			e.Bid = nil // encoding/json's null
			if !d.null() {
				e.Bid = new(Bid)
				d.bid(e.Bid)
			}
		case "auction":
			e.Auction = nil // encoding/json's null
			if !d.null() {
				e.Auction = new(Auction)
				d.auction(e.Auction)
			}
		case "person":
			e.Person = nil // encoding/json's null
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
	start, bad := d.i, d.bad
	if d.bidInOrder(b) {
		return
	}
	// Another key order, whitespace or a string the fast path does not
	// take: start over, key by key (keeping an error from before the bid).
	d.i, d.bad, *b = start, bad, Bid{}
	d.object(func(k []byte) {
		switch string(k) {
		case "auction":
			b.Auction = d.int()
		case "bidder":
			b.Bidder = d.int()
		case "price":
			b.Price = d.int()
		case "channel":
			d.str(&b.Channel)
		case "url":
			d.str(&b.URL)
		case "date_time":
			b.DateTime = d.int()
		case "extra":
			d.str(&b.Extra)
		default:
			d.bad = true
		}
	})
}

// eventInOrder decodes an event the way AppendEvent writes it: the type,
// then one object. It reports false when the input differs.
func (d *decoder) eventInOrder(e *Event) bool {
	if !d.lit(`{"event_type":`) {
		return false
	}
	t := d.int()
	if t < math.MinInt8 || t > math.MaxInt8 {
		return false
	}
	e.Type = EventType(t)
	switch {
	case d.lit(`,"bid":`):
		e.Bid = new(Bid)
		d.bid(e.Bid)
	case d.lit(`,"auction":`):
		e.Auction = new(Auction)
		d.auction(e.Auction)
	case d.lit(`,"person":`):
		e.Person = new(Person)
		d.person(e.Person)
	default:
		return false
	}
	return d.lit(`}`) && !d.bad
}

// bidInOrder decodes a bid with the keys in AppendBid's order and no
// whitespace, the way (nearly) every bid comes: literal keys compared in
// place instead of a key scan and lookup per field. It reports false when
// the input differs.
func (d *decoder) bidInOrder(b *Bid) bool {
	if !d.lit(`{"auction":`) {
		return false
	}
	b.Auction = d.int()
	if !d.lit(`,"bidder":`) {
		return false
	}
	b.Bidder = d.int()
	if !d.lit(`,"price":`) {
		return false
	}
	b.Price = d.int()
	if !d.lit(`,"channel":`) {
		return false
	}
	d.str(&b.Channel)
	if !d.lit(`,"url":`) {
		return false
	}
	d.str(&b.URL)
	if !d.lit(`,"date_time":`) {
		return false
	}
	b.DateTime = d.int()
	if !d.lit(`,"extra":`) {
		return false
	}
	d.str(&b.Extra)
	return d.lit(`}`) && !d.bad
}

func (d *decoder) auction(a *Auction) {
	d.object(func(k []byte) {
		switch string(k) {
		case "id":
			a.ID = d.int()
		case "item_name":
			d.str(&a.ItemName)
		case "description":
			d.str(&a.Description)
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
			d.str(&a.Extra)
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
			d.str(&p.Name)
		case "email_address":
			d.str(&p.EmailAddress)
		case "credit_card":
			d.str(&p.CreditCard)
		case "city":
			d.str(&p.City)
		case "state":
			d.str(&p.State)
		case "date_time":
			p.DateTime = d.int()
		case "extra":
			d.str(&p.Extra)
		default:
			d.bad = true
		}
	})
}

// jsonUnmarshal is encoding/json's decoder, for comparison in benchmarks.
var jsonUnmarshal = json.Unmarshal
