package nexmark

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// ErrNotSupported is returned for a query weir cannot express yet.
var ErrNotSupported = errors.New("nexmark: query not supported")

// ErrUnknownQuery is returned for a name that is not a Nexmark query.
var ErrUnknownQuery = errors.New("nexmark: unknown query")

// Queries lists the queries Topology builds, in order.
var Queries = []string{"q0", "q1", "q2", "q5", "q7", "q11", "q12"}

// Help says what each query computes.
var Help = map[string]string{
	"q0":  "pass-through: every bid, decoded and re-encoded",
	"q1":  "currency conversion: every bid with its price in euros (x 0.908)",
	"q2":  "selection: auction and price of the bids on auctions whose id is a multiple of 123",
	"q3":  "local item suggestion: person ⋈ auction (needs stream-table joins; not supported yet)",
	"q5":  "hot items: the auctions with the most bids in each 10 s window sliding by 2 s",
	"q7":  "highest bid: the highest bid of each 10 s tumbling window",
	"q11": "user sessions: bids per bidder per session (10 s gap)",
	"q12": "processing-time windows: bids per bidder per 10 s of processing time",
}

// QueryConfig configures a query's topology.
type QueryConfig struct {
	// Input is the topic of JSON events. Default "nexmark".
	Input string
	// Output is the topic of results. Default "nexmark-<query>".
	Output string
	// OutOfOrderness is the watermark's lag behind the largest event
	// time. Default 4s, as in the published queries.
	OutOfOrderness time.Duration
}

func (c QueryConfig) withDefaults(q string) QueryConfig {
	if c.Input == "" {
		c.Input = "nexmark"
	}
	if c.Output == "" {
		c.Output = "nexmark-" + q
	}
	if c.OutOfOrderness == 0 {
		c.OutOfOrderness = 4 * time.Second
	}
	return c
}

// Topology builds query q ("q0", "q5", ...) over cfg.Input. It returns an
// error wrapping ErrNotSupported for q3 and ErrUnknownQuery for a name that
// is not a query.
func Topology(q string, cfg QueryConfig) (*topology.Topology, error) {
	cfg = cfg.withDefaults(q)
	build, ok := queryBuilders[q]
	if !ok {
		if q == "q3" {
			return nil, fmt.Errorf("%w: q3 joins persons with auctions (a stream-table join), and weir has no joins yet", ErrNotSupported)
		}
		return nil, fmt.Errorf("%w %q: known: %v (q3 needs stream-table joins, which weir does not have yet)", ErrUnknownQuery, q, Queries)
	}
	t := topology.New()
	events := topology.Source(t, cfg.Input, serde.Bytes(), Codec(), topology.Named("source"),
		topology.WithTimestamps(func(_ []byte, e Event, _ int64) (int64, error) { return e.Timestamp(), nil }),
		topology.WithWatermarks(windows.BoundedOutOfOrderness(cfg.OutOfOrderness)))
	isBid := topology.Filter(events, func(_ []byte, e Event) bool { return e.Bid != nil }, topology.Named("bids"))
	bids := topology.MapValues(isBid, func(_ []byte, e Event) (Bid, error) { return *e.Bid, nil }, topology.Named("bid"))
	if err := build(bids, cfg); err != nil {
		return nil, err
	}
	return t, nil
}

var queryBuilders = map[string]func(topology.Stream[[]byte, Bid], QueryConfig) error{
	"q0":  q0,
	"q1":  q1,
	"q2":  q2,
	"q5":  q5,
	"q7":  q7,
	"q11": q11,
	"q12": q12,
}

func q0(bids topology.Stream[[]byte, Bid], cfg QueryConfig) error {
	topology.To(topology.WithSerdes(bids, serde.Bytes(), BidCodec()), cfg.Output, topology.Named("sink"))
	return nil
}

// DollarToEuro is q1's exchange rate, in thousandths.
const DollarToEuro = 908

func q1(bids topology.Stream[[]byte, Bid], cfg QueryConfig) error {
	euros := topology.MapValues(bids, func(_ []byte, b Bid) (Bid, error) {
		b.Price = b.Price * DollarToEuro / 1000
		return b, nil
	}, topology.Named("to-euro"))
	topology.To(topology.WithSerdes(euros, serde.Bytes(), BidCodec()), cfg.Output, topology.Named("sink"))
	return nil
}

// AuctionPrice is q2's output.
type AuctionPrice struct {
	Auction int64 `json:"auction"`
	Price   int64 `json:"price"`
}

func q2(bids topology.Stream[[]byte, Bid], cfg QueryConfig) error {
	sel := topology.Filter(bids, func(_ []byte, b Bid) bool { return b.Auction%123 == 0 }, topology.Named("auction-mod-123"))
	out := topology.MapValues(sel, func(_ []byte, b Bid) (AuctionPrice, error) {
		return AuctionPrice{Auction: b.Auction, Price: b.Price}, nil
	}, topology.Named("project"))
	topology.To(topology.WithSerdes(out, serde.Bytes(), appendSerde(func(dst []byte, v *AuctionPrice) []byte {
		dst = append(dst, `{"auction":`...)
		dst = strconv.AppendInt(dst, v.Auction, 10)
		dst = append(dst, `,"price":`...)
		dst = strconv.AppendInt(dst, v.Price, 10)
		return append(dst, '}')
	})), cfg.Output, topology.Named("sink"))
	return nil
}

// HotItems is q5's output: the auctions with the most bids in a window
// (several on a tie), and that count.
type HotItems struct {
	WindowStart int64   `json:"window_start"`
	WindowEnd   int64   `json:"window_end"`
	Auctions    []int64 `json:"auctions"`
	Count       int64   `json:"count"`
}

// AuctionCount is one auction's bid count in one window.
type AuctionCount struct {
	Auction int64 `json:"auction"`
	Count   int64 `json:"count"`
	End     int64 `json:"end"`
}

func q5(bids topology.Stream[[]byte, Bid], cfg QueryConfig) error {
	hop, err := windows.Hopping(10*time.Second, 2*time.Second)
	if err != nil {
		return err
	}
	tumble, err := windows.Tumbling(2 * time.Second)
	if err != nil {
		return err
	}
	// Stage 1: bids per auction per hopping window, partitioned by
	// auction. Before the repartition, each task counts its batch's bids
	// per auction and 2 s slice (Combine, as Flink's local-global
	// aggregation does): the partial counts travel through the
	// repartition topic (the record timestamp carries the event time),
	// and the hopping windows sum them.
	auctions := topology.Map(bids, func(_ []byte, b Bid) (int64, unit, error) { return b.Auction, unit{}, nil }, topology.Named("by-auction"))
	partial := topology.Combine(topology.WithSerdes(auctions, serde.Int64(), unitSerde{}), hop, windows.Count[unit](), topology.Named("auction-partials"))
	counts := topology.Aggregate(topology.WithSerdes(partial, serde.Int64(), serde.Int64()),
		windows.Spec{Assigner: hop}, windows.Sum[int64](), serde.Int64(), topology.Named("auction-counts"))
	// Stage 2: re-keyed by window start, the maximum per window. A
	// result of the hopping window [s, s+10s) has timestamp s+10s-1, so
	// the 2 s tumbling window [s+8s, s+10s) holds exactly the results of
	// that hopping window; it closes when every upstream task's
	// watermark passed s+10s, i.e. after all its counts arrived. Each
	// upstream task sends the maximum of the counts it has (Combine), so
	// one record per window and task crosses the repartition topic
	// instead of one per auction.
	byWindow := topology.Map(counts, func(auction int64, w topology.Windowed[int64]) (int64, AuctionCount, error) {
		return w.Window.Start, AuctionCount{Auction: auction, Count: w.Value, End: w.Window.End}, nil
	}, topology.Named("by-window"))
	localMax := topology.Combine(topology.WithSerdes(byWindow, serde.Int64(), auctionCountSerde{}), tumble,
		windows.Aggregation[AuctionCount, HotItems]{
			Init: func() HotItems { return HotItems{Count: -1} },
			Add: func(acc HotItems, c AuctionCount) HotItems {
				return addHotItems(acc, c.Count, c.End, c.Auction)
			},
		}, topology.Named("local-hot-items"))
	hot := topology.Aggregate(topology.WithSerdes(localMax, serde.Int64(), hotItemsSerde{}),
		windows.Spec{Assigner: tumble}, windows.Aggregation[HotItems, HotItems]{
			Init:  func() HotItems { return HotItems{Count: -1} },
			Add:   mergeHotItems,
			Merge: mergeHotItems,
		}, hotItemsSerde{}, topology.Named("hot-items"))
	out := topology.MapValues(hot, func(start int64, w topology.Windowed[HotItems]) (HotItems, error) {
		h := w.Value
		h.WindowStart = start
		sort.Slice(h.Auctions, func(i, j int) bool { return h.Auctions[i] < h.Auctions[j] })
		return h, nil
	}, topology.Named("format"))
	topology.To(topology.WithSerdes(out, serde.Int64(), serde.JSON[HotItems]()), cfg.Output, topology.Named("sink"))
	return nil
}

// mergeHotItems keeps the auctions with the higher count of a and b (all
// of them on a tie).
func mergeHotItems(a, b HotItems) HotItems {
	return addHotItems(a, b.Count, b.WindowEnd, b.Auctions...)
}

// addHotItems is mergeHotItems with b's fields as arguments, so that adding
// one auction allocates no slice for it.
func addHotItems(a HotItems, count, end int64, auctions ...int64) HotItems {
	switch {
	case count > a.Count:
		a.Count, a.Auctions = count, append(a.Auctions[:0], auctions...)
	case count == a.Count:
		a.Auctions = append(a.Auctions, auctions...)
	}
	a.WindowEnd = max(a.WindowEnd, end)
	return a
}

// auctionCountSerde and hotItemsSerde are q5's binary formats between its
// stages and in its window state (varints).
type auctionCountSerde struct{}

func (auctionCountSerde) Encode(c AuctionCount) ([]byte, error) {
	b := make([]byte, 0, 3*binary.MaxVarintLen64)
	b = binary.AppendVarint(b, c.Auction)
	b = binary.AppendVarint(b, c.Count)
	return binary.AppendVarint(b, c.End), nil
}

func (auctionCountSerde) Decode(b []byte) (AuctionCount, error) {
	var c AuctionCount
	var err error
	d := varints{b: b}
	c.Auction, c.Count, c.End, err = d.next(), d.next(), d.next(), d.done()
	return c, err
}

type hotItemsSerde struct{}

func (hotItemsSerde) Encode(h HotItems) ([]byte, error) {
	b := make([]byte, 0, (4+len(h.Auctions))*binary.MaxVarintLen64)
	b = binary.AppendVarint(b, h.WindowStart)
	b = binary.AppendVarint(b, h.WindowEnd)
	b = binary.AppendVarint(b, h.Count)
	b = binary.AppendVarint(b, int64(len(h.Auctions)))
	for _, a := range h.Auctions {
		b = binary.AppendVarint(b, a)
	}
	return b, nil
}

func (hotItemsSerde) Decode(b []byte) (HotItems, error) {
	d := varints{b: b}
	h := HotItems{WindowStart: d.next(), WindowEnd: d.next(), Count: d.next()}
	n := d.next()
	if n < 0 || n > int64(len(b)) {
		return HotItems{}, &serde.DecodeError{Serde: "nexmark hot items", Err: fmt.Errorf("%d auctions in %d bytes", n, len(b))}
	}
	h.Auctions = make([]int64, n)
	for i := range h.Auctions {
		h.Auctions[i] = d.next()
	}
	return h, d.done()
}

type varints struct {
	b   []byte
	bad bool
}

func (d *varints) next() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *varints) done() error {
	if d.bad || len(d.b) != 0 {
		return &serde.DecodeError{Serde: "nexmark varints", Err: errors.New("truncated or trailing bytes")}
	}
	return nil
}

// HighestBid is q7's output: the highest bid of a window (the earliest
// in input order on a tie).
type HighestBid struct {
	WindowStart int64 `json:"window_start"`
	WindowEnd   int64 `json:"window_end"`
	Bid         Bid   `json:"bid"`
}

// maxBid keeps the bid with the highest price.
func maxBid() windows.Aggregation[Bid, Bid] {
	return windows.Aggregation[Bid, Bid]{
		Init: func() Bid { return Bid{Price: -1} },
		Add: func(acc Bid, b Bid) Bid {
			if b.Price > acc.Price {
				return b
			}
			return acc
		},
	}
}

func q7(bids topology.Stream[[]byte, Bid], cfg QueryConfig) error {
	tumble, err := windows.Tumbling(10 * time.Second)
	if err != nil {
		return err
	}
	// Two phases, as Flink runs it: the highest bid per window in each
	// input partition (no repartition: the stream is still keyed by the
	// source key), then the highest of those per window in one task.
	local := topology.Aggregate(bids, windows.Spec{Assigner: tumble}, maxBid(), BidCodec(), topology.Named("local-max"))
	byWindow := topology.Map(local, func(_ []byte, w topology.Windowed[Bid]) (int64, Bid, error) {
		return w.Window.Start, w.Value, nil
	}, topology.Named("by-window"))
	global := topology.Aggregate(topology.WithSerdes(byWindow, serde.Int64(), BidCodec()),
		windows.Spec{Assigner: tumble}, maxBid(), BidCodec(), topology.Named("highest-bid"))
	out := topology.MapValues(global, func(_ int64, w topology.Windowed[Bid]) (HighestBid, error) {
		return HighestBid{WindowStart: w.Window.Start, WindowEnd: w.Window.End, Bid: w.Value}, nil
	}, topology.Named("format"))
	topology.To(topology.WithSerdes(out, serde.Int64(), serde.JSON[HighestBid]()), cfg.Output, topology.Named("sink"))
	return nil
}

// BidderCount is the output of q11 and q12: bids of a bidder in a window
// (a session for q11, processing time for q12).
type BidderCount struct {
	Bidder      int64 `json:"bidder"`
	BidCount    int64 `json:"bid_count"`
	WindowStart int64 `json:"starttime"`
	WindowEnd   int64 `json:"endtime"`
}

func bidderCountSerde() serde.Serde[BidderCount] {
	return appendSerde(func(dst []byte, v *BidderCount) []byte {
		dst = append(dst, `{"bidder":`...)
		dst = strconv.AppendInt(dst, v.Bidder, 10)
		dst = append(dst, `,"bid_count":`...)
		dst = strconv.AppendInt(dst, v.BidCount, 10)
		dst = append(dst, `,"starttime":`...)
		dst = strconv.AppendInt(dst, v.WindowStart, 10)
		dst = append(dst, `,"endtime":`...)
		dst = strconv.AppendInt(dst, v.WindowEnd, 10)
		return append(dst, '}')
	})
}

func q11(bids topology.Stream[[]byte, Bid], cfg QueryConfig) error {
	session, err := windows.Session(10 * time.Second)
	if err != nil {
		return err
	}
	bidders := topology.Map(bids, func(_ []byte, b Bid) (int64, unit, error) { return b.Bidder, unit{}, nil }, topology.Named("by-bidder"))
	counts := topology.Aggregate(topology.WithSerdes(bidders, serde.Int64(), unitSerde{}),
		windows.Spec{Assigner: session}, windows.Count[unit](), serde.Int64(), topology.Named("bidder-sessions"))
	out := topology.MapValues(counts, func(bidder int64, w topology.Windowed[int64]) (BidderCount, error) {
		return BidderCount{Bidder: bidder, BidCount: w.Value, WindowStart: w.Window.Start, WindowEnd: w.Window.End}, nil
	}, topology.Named("format"))
	topology.To(topology.WithSerdes(out, serde.Int64(), bidderCountSerde()), cfg.Output, topology.Named("sink"))
	return nil
}

// Q12Window is q12's processing-time window size.
const Q12Window = 10 * time.Second

const q12Window = int64(Q12Window / time.Millisecond)

// q12 counts bids per bidder in 10 s windows of processing time. weir's
// window operator is event-time only, so this is a keyed process function
// with processing-time timers: the count of the bidder's current window
// is kept in state (window start, count), and a timer at the window's end
// emits and clears it. Timers fire at batch boundaries, so a window is
// emitted up to one commit interval after its end; a record of a later
// window for a bidder whose previous window has not fired yet emits that
// window first.
func q12(bids topology.Stream[[]byte, Bid], cfg QueryConfig) error {
	const name, store = "bidder-proc-windows", "bidder-proc-windows-counts"
	bidders := topology.Map(bids, func(_ []byte, b Bid) (int64, unit, error) { return b.Bidder, unit{}, nil }, topology.Named("by-bidder"))
	i64 := serde.Int64()
	counts := topology.ProcessTimed(topology.WithSerdes(bidders, i64, unitSerde{}),
		func(ctx *topology.Context, timers *topology.Timers[int64]) (topology.TimedProcessor[int64, unit, int64, BidderCount], error) {
			st, err := ctx.Store(store)
			if err != nil {
				return topology.TimedProcessor[int64, unit, int64, BidderCount]{}, err
			}
			var kb, vb [16]byte
			load := func(bidder int64) (start, n int64, ok bool, err error) {
				binary.BigEndian.PutUint64(kb[:8], uint64(bidder))
				v, err := st.Get(kb[:8])
				switch {
				case errors.Is(err, state.ErrNotFound):
					return 0, 0, false, nil
				case err != nil:
					return 0, 0, false, err
				case len(v) != 16:
					return 0, 0, false, fmt.Errorf("stored window of bidder %d: %d bytes, want 16", bidder, len(v))
				}
				return int64(binary.BigEndian.Uint64(v[:8])), int64(binary.BigEndian.Uint64(v[8:])), true, nil
			}
			emit := func(bidder, start, n int64, out func(topology.Record[int64, BidderCount]) error) error {
				return out(topology.Record[int64, BidderCount]{Key: bidder, Timestamp: start + q12Window - 1,
					Value: BidderCount{Bidder: bidder, BidCount: n, WindowStart: start, WindowEnd: start + q12Window}})
			}
			return topology.TimedProcessor[int64, unit, int64, BidderCount]{
				Process: func(ctx *topology.Context, r topology.Record[int64, unit], out func(topology.Record[int64, BidderCount]) error) error {
					now := ctx.ProcessingTime().UnixMilli()
					start := now - now%q12Window
					old, n, ok, err := load(r.Key)
					if err != nil {
						return err
					}
					if ok && old != start {
						if err := emit(r.Key, old, n, out); err != nil {
							return err
						}
						if err := timers.Delete(topology.ProcessingTime, r.Key, old+q12Window); err != nil {
							return err
						}
						ok, n = false, 0
					}
					if !ok {
						if err := timers.Register(topology.ProcessingTime, r.Key, start+q12Window); err != nil {
							return err
						}
					}
					binary.BigEndian.PutUint64(kb[:8], uint64(r.Key))
					binary.BigEndian.PutUint64(vb[:8], uint64(start))
					binary.BigEndian.PutUint64(vb[8:], uint64(n+1))
					return st.Put(kb[:8], vb[:])
				},
				OnTimer: func(_ *topology.Context, t topology.Timer[int64], out func(topology.Record[int64, BidderCount]) error) error {
					start, n, ok, err := load(t.Key)
					if err != nil || !ok || start+q12Window != t.Time {
						return err
					}
					if err := emit(t.Key, start, n, out); err != nil {
						return err
					}
					return st.Delete(kb[:8])
				},
			}, nil
		}, topology.Named(name), topology.Stores(store))
	topology.To(topology.WithSerdes(counts, i64, bidderCountSerde()), cfg.Output, topology.Named("sink"))
	return nil
}

// unit is a value with no content: what travels through a repartition
// topic when the key and the timestamp are all a query needs.
type unit struct{}

type unitSerde struct{}

func (unitSerde) Encode(unit) ([]byte, error) { return []byte{}, nil }
func (unitSerde) Decode([]byte) (unit, error) { return unit{}, nil }

// appendSerde encodes with a hand-written appender and decodes with
// encoding/json (only tests and readers decode outputs).
func appendSerde[T any](enc func(dst []byte, v *T) []byte) serde.Serde[T] {
	return appendCodec[T]{enc: enc, json: serde.JSON[T]()}
}

type appendCodec[T any] struct {
	enc  func(dst []byte, v *T) []byte
	json serde.Serde[T]
}

func (c appendCodec[T]) Encode(v T) ([]byte, error) { return c.enc(make([]byte, 0, 64), &v), nil }
func (c appendCodec[T]) Decode(b []byte) (T, error) { return c.json.Decode(b) }

// Def is a query as a named topology for the processor CLI: Name selects
// it with --topology, Define registers its flags and returns its builder.
// It has the shape of app.Topology, which converts from it.
type Def struct {
	Name   string
	Help   string
	Define func(fs *flag.FlagSet) func() (*topology.Topology, error)
}

// Topologies returns the queries as CLI topologies "nexmark-q0" ...
// "nexmark-q12", each with flags --input, --output and --out-of-orderness.
func Topologies() []Def {
	defs := make([]Def, 0, len(Queries))
	for _, q := range Queries {
		defs = append(defs, Def{
			Name: "nexmark-" + q,
			Help: "Nexmark " + q + ": " + Help[q],
			Define: func(fs *flag.FlagSet) func() (*topology.Topology, error) {
				cfg := QueryConfig{}.withDefaults(q)
				fs.StringVar(&cfg.Input, "input", cfg.Input, "input topic of JSON Nexmark events ('processor gen --kind nexmark')")
				fs.StringVar(&cfg.Output, "output", cfg.Output, "output topic")
				fs.DurationVar(&cfg.OutOfOrderness, "out-of-orderness", cfg.OutOfOrderness, "watermark lag behind the largest event time")
				return func() (*topology.Topology, error) { return Topology(q, cfg) }
			},
		})
	}
	return defs
}
