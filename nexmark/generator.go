package nexmark

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Proportions of the event kinds by event number, and the model's other
// constants, as in the published Nexmark generator.
const (
	PersonProportion  = 1
	AuctionProportion = 3
	BidProportion     = 46
	totalProportion   = PersonProportion + AuctionProportion + BidProportion

	FirstPersonID   = 1000
	FirstAuctionID  = 1000
	FirstCategoryID = 10
	NumCategories   = 5

	personIDLead  = 10
	auctionIDLead = 10
	// Hot auctions, bidders and sellers are the latest multiple of these
	// (of base-0 ids).
	hotAuctionRatioID = 100
	hotSellerRatioID  = 100
	hotBidderRatioID  = 100
	hotChannelsRatio  = 2
	channelsNumber    = 10_000
	minStringLength   = 3
)

// Config configures a Generator. Start from DefaultConfig.
type Config struct {
	// Seed makes the events: the same seed gives the same events.
	// Default 1.
	Seed uint64
	// Rate is how fast event time advances, in events per second: event n
	// has date_time BaseTime + n*1000/Rate ms. Default 10,000,000 (the
	// rate of the published Flink Nexmark configuration).
	Rate float64
	// BaseTime is the event time of event 0, epoch ms. Default
	// 2026-01-01T00:00:00Z. Records written to Kafka need a recent one:
	// a broker deletes records older than its retention (7 days by
	// default) by their timestamps, and repartition records carry event
	// times.
	BaseTime int64
	// HotAuctionRatio: 1 - 1/ratio of bids go to the hot auction.
	// Default 2.
	HotAuctionRatio int
	// HotBiddersRatio: 1 - 1/ratio of bids come from the hot bidder.
	// Default 4.
	HotBiddersRatio int
	// HotSellersRatio: 1 - 1/ratio of auctions come from the hot
	// seller. Default 4.
	HotSellersRatio int
	// NumActivePeople is how many recent persons bid and sell. Default
	// 1000.
	NumActivePeople int64
	// NumInFlightAuctions is how many recent auctions get bids. Default
	// 100.
	NumInFlightAuctions int64
	// Average encoded sizes the "extra" fields pad events to. Defaults
	// 200, 500 and 100 bytes.
	AvgPersonByteSize, AvgAuctionByteSize, AvgBidByteSize int
}

// DefaultConfig returns the published Nexmark defaults.
func DefaultConfig() Config {
	return Config{
		Seed:                1,
		Rate:                10_000_000,
		BaseTime:            1_767_225_600_000, // 2026-01-01T00:00:00Z
		HotAuctionRatio:     2,
		HotBiddersRatio:     4,
		HotSellersRatio:     4,
		NumActivePeople:     1000,
		NumInFlightAuctions: 100,
		AvgPersonByteSize:   200,
		AvgAuctionByteSize:  500,
		AvgBidByteSize:      100,
	}
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("nexmark: "+format, args...)) }
	if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
		bad("rate %v: want a positive number of events per second", c.Rate)
	}
	if c.HotAuctionRatio < 1 || c.HotBiddersRatio < 1 || c.HotSellersRatio < 1 {
		bad("hot ratios %d/%d/%d: want at least 1", c.HotAuctionRatio, c.HotBiddersRatio, c.HotSellersRatio)
	}
	if c.NumActivePeople < 1 || c.NumInFlightAuctions < 1 {
		bad("active people %d, in-flight auctions %d: want at least 1", c.NumActivePeople, c.NumInFlightAuctions)
	}
	if c.AvgPersonByteSize < 0 || c.AvgAuctionByteSize < 0 || c.AvgBidByteSize < 0 {
		bad("average sizes must not be negative")
	}
	return errors.Join(errs...)
}

// Generator makes Nexmark events. Event n depends only on the Config and
// n. A Generator is not safe for concurrent use.
type Generator struct {
	cfg     Config
	delayUs float64
	pcg     rand.PCG
	r       *rand.Rand
	sb      strings.Builder
	// channels are the 10,000 cold channels and their URLs.
	channels [channelsNumber][2]string
	hotURLs  [len(hotChannels)]string
}

var hotChannels = [...]string{"Google", "Facebook", "Baidu", "Apple"}

var (
	firstNames = [...]string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames  = [...]string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
	usStates   = [...]string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	usCities   = [...]string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
)

// NewGenerator returns a Generator for cfg.
func NewGenerator(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg, delayUs: 1e6 / cfg.Rate}
	g.r = rand.New(&g.pcg)
	// The channel table is part of the model, not of the seed's events:
	// the same for every seed.
	g.pcg.Seed(0x6e65786d61726b, 0)
	for i := range g.hotURLs {
		g.hotURLs[i] = g.baseURL()
	}
	for i := range g.channels {
		url := g.baseURL()
		if g.r.IntN(10) > 0 {
			url += "&channel_id=" + strconv.Itoa(int(reverseBits(int32(i))&math.MaxInt32))
		}
		g.channels[i] = [2]string{"channel-" + strconv.Itoa(i), url}
	}
	return g, nil
}

func reverseBits(x int32) int32 {
	var r uint32
	u := uint32(x)
	for range 32 {
		r = r<<1 | u&1
		u >>= 1
	}
	return int32(r)
}

func (g *Generator) baseURL() string {
	return "https://www.nexmark.com/" + g.nextString(5) + "/" + g.nextString(5) + "/" + g.nextString(5) + "/item.htm?query=1"
}

// Config returns the generator's configuration.
func (g *Generator) Config() Config { return g.cfg }

// Type returns the kind of event number n.
func Type(n int64) EventType {
	switch rem := n % totalProportion; {
	case rem < PersonProportion:
		return PersonEvent
	case rem < PersonProportion+AuctionProportion:
		return AuctionEvent
	}
	return BidEvent
}

// Timestamp returns the event time (epoch ms) of event number n.
func (g *Generator) Timestamp(n int64) int64 {
	return g.cfg.BaseTime + int64(float64(n)*g.delayUs/1000)
}

// Event returns event number n (n >= 0).
func (g *Generator) Event(n int64) Event {
	g.pcg.Seed(g.cfg.Seed, uint64(n))
	ts := g.Timestamp(n)
	switch Type(n) {
	case PersonEvent:
		return Event{Type: PersonEvent, Person: g.person(n, ts)}
	case AuctionEvent:
		return Event{Type: AuctionEvent, Auction: g.auction(n, ts)}
	}
	return Event{Type: BidEvent, Bid: g.bid(n, ts)}
}

// AppendJSON appends the JSON encoding of event number n to dst.
func (g *Generator) AppendJSON(dst []byte, n int64) []byte {
	e := g.Event(n)
	return AppendEvent(dst, &e)
}

// lastBase0PersonID is the base-0 id of the latest person at event n.
func lastBase0PersonID(n int64) int64 {
	epoch, offset := n/totalProportion, n%totalProportion
	if offset >= PersonProportion {
		offset = PersonProportion - 1
	}
	return epoch*PersonProportion + offset
}

// lastBase0AuctionID is the base-0 id of the latest auction at event n.
func lastBase0AuctionID(n int64) int64 {
	epoch, offset := n/totalProportion, n%totalProportion
	switch {
	case offset < PersonProportion:
		epoch--
		offset = AuctionProportion - 1
	case offset >= PersonProportion+AuctionProportion:
		offset = AuctionProportion - 1
	default:
		offset -= PersonProportion
	}
	return epoch*AuctionProportion + offset
}

// nextBase0PersonID picks a recent person (or one about to exist).
func (g *Generator) nextBase0PersonID(n int64) int64 {
	numPeople := lastBase0PersonID(n) + 1
	active := min(numPeople, g.cfg.NumActivePeople)
	return numPeople - active + g.r.Int64N(active+personIDLead)
}

// nextBase0AuctionID picks a recent auction (or one about to exist).
func (g *Generator) nextBase0AuctionID(n int64) int64 {
	maxAuction := lastBase0AuctionID(n)
	minAuction := max(maxAuction-g.cfg.NumInFlightAuctions, 0)
	return minAuction + g.r.Int64N(maxAuction-minAuction+1+auctionIDLead)
}

// nextPrice is log-uniform in [$1, $1M], in cents.
func (g *Generator) nextPrice() int64 {
	return int64(math.Round(math.Pow(10, g.r.Float64()*6) * 100))
}

// nextString is 3..max-1 random letters and spaces, trimmed.
func (g *Generator) nextString(maxLength int) string {
	n := minStringLength + g.r.IntN(maxLength-minStringLength)
	return strings.TrimSpace(g.exactString(n))
}

func (g *Generator) exactString(n int) string {
	g.sb.Reset()
	g.sb.Grow(n)
	for range n {
		if g.r.IntN(13) == 0 {
			g.sb.WriteByte(' ')
		} else {
			g.sb.WriteByte(byte('a' + g.r.IntN(26)))
		}
	}
	return g.sb.String()
}

// nextExtra pads an event of currentSize bytes to about desired bytes.
func (g *Generator) nextExtra(currentSize, desired int) string {
	if currentSize > desired {
		return ""
	}
	desired -= currentSize
	delta := int(math.Round(float64(desired) * 0.2))
	size := desired - delta
	if delta > 0 {
		size += g.r.IntN(2 * delta)
	}
	return g.exactString(size)
}

func (g *Generator) person(n, ts int64) *Person {
	p := &Person{ID: lastBase0PersonID(n) + FirstPersonID, DateTime: ts}
	p.Name = firstNames[g.r.IntN(len(firstNames))] + " " + lastNames[g.r.IntN(len(lastNames))]
	p.EmailAddress = g.nextString(7) + "@" + g.nextString(5) + ".com"
	var cc [19]byte
	for i := range 4 {
		v := g.r.IntN(10000)
		for j := 3; j >= 0; j-- {
			cc[i*5+j] = byte('0' + v%10)
			v /= 10
		}
		if i < 3 {
			cc[i*5+4] = ' '
		}
	}
	p.CreditCard = string(cc[:])
	p.City = usCities[g.r.IntN(len(usCities))]
	p.State = usStates[g.r.IntN(len(usStates))]
	size := 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State)
	p.Extra = g.nextExtra(size, g.cfg.AvgPersonByteSize)
	return p
}

func (g *Generator) auction(n, ts int64) *Auction {
	a := &Auction{ID: lastBase0AuctionID(n) + FirstAuctionID, DateTime: ts}
	if g.r.IntN(g.cfg.HotSellersRatio) > 0 {
		a.Seller = lastBase0PersonID(n) / hotSellerRatioID * hotSellerRatioID
	} else {
		a.Seller = g.nextBase0PersonID(n)
	}
	a.Seller += FirstPersonID
	a.Category = FirstCategoryID + int64(g.r.IntN(NumCategories))
	a.InitialBid = g.nextPrice()
	// Auctions last up to twice the time until the auction
	// NumInFlightAuctions later is created.
	horizon := g.Timestamp(n+g.cfg.NumInFlightAuctions*totalProportion/AuctionProportion) - ts
	a.Expires = ts + 1 + g.r.Int64N(max(horizon*2, 1))
	a.ItemName = g.nextString(20)
	a.Description = g.nextString(100)
	a.Reserve = a.InitialBid + g.nextPrice()
	size := 8 + len(a.ItemName) + len(a.Description) + 8 + 8 + 8 + 8 + 8
	a.Extra = g.nextExtra(size, g.cfg.AvgAuctionByteSize)
	return a
}

func (g *Generator) bid(n, ts int64) *Bid {
	b := &Bid{DateTime: ts}
	if g.r.IntN(g.cfg.HotAuctionRatio) > 0 {
		b.Auction = lastBase0AuctionID(n) / hotAuctionRatioID * hotAuctionRatioID
	} else {
		b.Auction = g.nextBase0AuctionID(n)
	}
	b.Auction += FirstAuctionID
	if g.r.IntN(g.cfg.HotBiddersRatio) > 0 {
		b.Bidder = lastBase0PersonID(n)/hotBidderRatioID*hotBidderRatioID + 1
	} else {
		b.Bidder = g.nextBase0PersonID(n)
	}
	b.Bidder += FirstPersonID
	b.Price = g.nextPrice()
	if g.r.IntN(hotChannelsRatio) > 0 {
		i := g.r.IntN(len(hotChannels))
		b.Channel, b.URL = hotChannels[i], g.hotURLs[i]
	} else {
		c := &g.channels[g.r.IntN(channelsNumber)]
		b.Channel, b.URL = c[0], c[1]
	}
	b.Extra = g.nextExtra(32, g.cfg.AvgBidByteSize)
	return b
}

// EndMarker returns the event that ends an input: a person with event
// time ts (far after the last event), which moves every watermark past the
// last window so that every window closes. Queries over bids ignore it
// otherwise.
func EndMarker(ts int64) Event {
	return Event{Type: PersonEvent, Person: &Person{ID: -1, Name: "end of input", DateTime: ts}}
}

// EndMarkerDelay is how far after the last event EndMarker's event time
// is.
const EndMarkerDelay = 24 * 60 * 60 * 1000 // ms

// Partition returns the input partition of event number n: n modulo
// partitions, so that every partition's event times increase.
func Partition(n int64, partitions int) int32 { return int32(n % int64(partitions)) }

// Input generates events [0, events) as the input topic topic with the
// given number of partitions (Partition says which), each followed by an
// end marker when endMarker is set. Keys are nil; the Kafka timestamp is
// the event time.
func (g *Generator) Input(topic string, events int64, partitions int, endMarker bool) Input {
	in := Input{Topic: topic, Partitions: make([][]Record, partitions)}
	per := int(events/int64(partitions)) + 2
	for p := range in.Partitions {
		in.Partitions[p] = make([]Record, 0, per)
	}
	// One arena per ~1 MiB of values, so the input is a few large
	// allocations rather than one per event.
	var arena []byte
	for n := range events {
		if cap(arena)-len(arena) < 4096 {
			arena = make([]byte, 0, 1<<20)
		}
		start := len(arena)
		arena = g.AppendJSON(arena, n)
		p := Partition(n, partitions)
		in.Partitions[p] = append(in.Partitions[p], Record{Value: arena[start:len(arena):len(arena)], Timestamp: g.Timestamp(n)})
	}
	if endMarker {
		ts := g.Timestamp(events) + EndMarkerDelay
		e := EndMarker(ts)
		v := AppendEvent(nil, &e)
		for p := range in.Partitions {
			in.Partitions[p] = append(in.Partitions[p], Record{Value: v, Timestamp: ts})
		}
	}
	return in
}
