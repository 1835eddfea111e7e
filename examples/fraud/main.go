// Command fraud flags payment cards used too often: more than --limit
// payments within --window of event time. It is a keyed process function
// with state (the card's recent payments) and event-time timers (which
// forget payments once they leave the window), run with weir's whole CLI.
//
//	go run ./examples/fraud run --brokers 127.0.0.1:9092 --app-id fraud --topology fraud
package main

import (
	"errors"
	"flag"
	"time"

	"github.com/weirstream/weir/app"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// Payment is an input value; the record key is the card.
type Payment struct {
	Card   string  `json:"card"`
	Amount float64 `json:"amount"`
	TS     int64   `json:"ts"` // event time, epoch ms
}

// Alert is an output value, keyed by card.
type Alert struct {
	Card     string  `json:"card"`
	Payments int     `json:"payments"`
	Total    float64 `json:"total"`
	From     int64   `json:"from"` // first payment in the window
	To       int64   `json:"to"`   // the payment that crossed the limit
}

// Config configures Fraud; the flags have the same names.
type Config struct {
	Input, Output  string
	Limit          int           // alert above this many payments...
	Window         time.Duration // ...within this much event time
	OutOfOrderness time.Duration // watermark = max event time - this
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Input: "payments", Output: "fraud-alerts", Limit: 3, Window: time.Minute, OutOfOrderness: 5 * time.Second}
}

// Store names; each becomes a changelog topic "<app>-<store>-changelog".
const (
	recentStore  = "fraud-recent"  // card -> payments within the window
	alertedStore = "fraud-alerted" // card -> event time until which it is not alerted again
)

// Fraud returns the topology. Payments must be keyed by card (the
// producer's key), so no repartition is needed.
func Fraud(cfg Config) (*topology.Topology, error) {
	if cfg.Limit < 1 || cfg.Window < time.Millisecond || cfg.OutOfOrderness < 0 {
		return nil, errors.New("fraud: --limit must be >= 1, --window >= 1ms, --out-of-orderness >= 0")
	}
	window := cfg.Window.Milliseconds()
	t := topology.New()
	payments := topology.Source(t, cfg.Input, serde.String(), serde.JSON[Payment](), topology.Named("payments"),
		topology.WithTimestamps(func(_ string, p Payment, _ int64) (int64, error) { return p.TS, nil }),
		topology.WithWatermarks(windows.BoundedOutOfOrderness(cfg.OutOfOrderness)))

	alerts := topology.ProcessTimed(payments, func(ctx *topology.Context, timers *topology.Timers[string]) (topology.TimedProcessor[string, Payment, string, Alert], error) {
		rs, err := ctx.Store(recentStore)
		if err != nil {
			return topology.TimedProcessor[string, Payment, string, Alert]{}, err
		}
		as, err := ctx.Store(alertedStore)
		if err != nil {
			return topology.TimedProcessor[string, Payment, string, Alert]{}, err
		}
		recent := state.NewValue(rs, serde.JSON[[]Payment]())
		alerted := state.NewValue(as, serde.Int64())

		// within keeps the payments newer than now-window.
		within := func(ps []Payment, now int64) []Payment {
			kept := ps[:0]
			for _, p := range ps {
				if p.TS > now-window {
					kept = append(kept, p)
				}
			}
			return kept
		}
		return topology.TimedProcessor[string, Payment, string, Alert]{
			Process: func(ctx *topology.Context, r topology.Record[string, Payment], out func(topology.Record[string, Alert]) error) error {
				card := []byte(r.Key)
				ps, _, err := recent.Get(card)
				if err != nil {
					return err
				}
				ps = append(within(ps, r.Timestamp), r.Value)
				if err := recent.Set(card, ps); err != nil {
					return err
				}
				// Forget this payment once it leaves the window.
				if err := timers.Register(topology.EventTime, r.Key, r.Timestamp+window); err != nil {
					return err
				}
				if len(ps) <= cfg.Limit {
					return nil
				}
				quietUntil, _, err := alerted.Get(card)
				if err != nil || r.Timestamp < quietUntil {
					return err // one alert per window of activity
				}
				if err := alerted.Set(card, r.Timestamp+window); err != nil {
					return err
				}
				a := Alert{Card: r.Key, Payments: len(ps), From: ps[0].TS, To: r.Timestamp}
				for _, p := range ps {
					a.Total += p.Amount
					a.From = min(a.From, p.TS)
				}
				return out(topology.Record[string, Alert]{Key: r.Key, Value: a, Timestamp: r.Timestamp})
			},
			OnTimer: func(ctx *topology.Context, tm topology.Timer[string], _ func(topology.Record[string, Alert]) error) error {
				card := []byte(tm.Key)
				ps, ok, err := recent.Get(card)
				if err != nil || !ok {
					return err
				}
				if ps = within(ps, tm.Time); len(ps) > 0 {
					return recent.Set(card, ps)
				}
				// Nothing left: drop the card's state entirely.
				if err := recent.Clear(card); err != nil {
					return err
				}
				return alerted.Clear(card)
			},
		}, nil
	}, topology.Named("rule"), topology.Stores(recentStore, alertedStore))

	topology.To(topology.WithSerdes(alerts, serde.String(), serde.JSON[Alert]()), cfg.Output, topology.Named("alerts"))
	return t, nil
}

func main() {
	app.Main(app.Topology{
		Name: "fraud",
		Help: "alert on cards with more than --limit payments within --window",
		Define: func(fs *flag.FlagSet) func() (*topology.Topology, error) {
			cfg := DefaultConfig()
			fs.StringVar(&cfg.Input, "input", cfg.Input, "payments topic (key: card, value: JSON {card, amount, ts})")
			fs.StringVar(&cfg.Output, "output", cfg.Output, "alerts topic")
			fs.IntVar(&cfg.Limit, "limit", cfg.Limit, "alert above this many payments per card within --window")
			fs.DurationVar(&cfg.Window, "window", cfg.Window, "event-time window of the rule")
			fs.DurationVar(&cfg.OutOfOrderness, "out-of-orderness", cfg.OutOfOrderness, "how late payments may arrive")
			return func() (*topology.Topology, error) { return Fraud(cfg) }
		},
	})
}
