package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// Schema is the Avro schema of the input values, registered under
// "<input>-value".
const Schema = `{
  "type": "record", "name": "PageView", "namespace": "weir.examples",
  "fields": [
    {"name": "user", "type": "string"},
    {"name": "page", "type": "string"},
    {"name": "ts", "type": "long", "doc": "event time, epoch ms"}
  ]
}`

// PageView is an input value.
type PageView struct {
	User string
	Page string
	TS   int64
}

// Mapping maps PageView to and from Avro records of Schema (or of any
// schema with these fields: records written with a newer schema that adds
// fields still decode).
var Mapping = serde.AvroMapping[PageView]{
	ToMap: func(v PageView) (map[string]any, error) {
		return map[string]any{"user": v.User, "page": v.Page, "ts": v.TS}, nil
	},
	FromMap: func(m map[string]any) (PageView, error) {
		user, ok1 := m["user"].(string)
		page, ok2 := m["page"].(string)
		ts, ok3 := m["ts"].(int64)
		if !ok1 || !ok2 || !ok3 {
			return PageView{}, fmt.Errorf("want user, page (strings) and ts (long), got %s", serde.Excerpt(fmt.Appendf(nil, "%v", m)))
		}
		return PageView{User: user, Page: page, TS: ts}, nil
	},
}

// Session is an output value, keyed by user: one per session, emitted
// once the watermark passes its end (last view + gap).
type Session struct {
	User      string   `json:"user"`
	Start     int64    `json:"start"`     // first view, epoch ms
	LastView  int64    `json:"last_view"` // last view, epoch ms
	Views     int      `json:"views"`
	Pages     []string `json:"pages"` // distinct pages in first-view order, at most MaxPages
	Truncated bool     `json:"truncated,omitempty"`
}

// MaxPages bounds the pages a session lists.
const MaxPages = 20

// view is what crosses the repartition topic: the page (the user is the
// key, the time the record timestamp).
type view struct {
	Page string `json:"p"`
}

// acc is the session accumulator, stored as JSON.
type acc struct {
	Views     int      `json:"v"`
	Pages     []string `json:"p"`
	Truncated bool     `json:"t,omitempty"`
}

func (a acc) addPage(p string) acc {
	for _, q := range a.Pages {
		if q == p {
			return a
		}
	}
	if len(a.Pages) == MaxPages {
		a.Truncated = true
		return a
	}
	a.Pages = append(a.Pages, p)
	return a
}

var sessionAgg = windows.Aggregation[view, acc]{
	Init: func() acc { return acc{} },
	Add: func(a acc, v view) acc {
		a = a.addPage(v.Page)
		a.Views++
		return a
	},
	Merge: func(a, b acc) acc { // a is the earlier session
		for _, p := range b.Pages {
			a = a.addPage(p)
		}
		a.Views += b.Views
		a.Truncated = a.Truncated || b.Truncated
		return a
	},
}

// Config configures Sessionize; the flags have the same names.
type Config struct {
	Input, Output  string
	Gap            time.Duration // a session ends after this much inactivity
	OutOfOrderness time.Duration // watermark = max event time - this
	Grace          time.Duration // how long a session waits for late views after it ended
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Input: "page-views", Output: "sessions", Gap: 30 * time.Minute, OutOfOrderness: 10 * time.Second}
}

// Sessionize returns the topology: page views (Avro, decoded by views)
// re-keyed by user, session windows, one result per session.
func Sessionize(cfg Config, views serde.Serde[PageView]) (*topology.Topology, error) {
	if views == nil {
		return nil, errors.New("sessionize: no value serde for the page views")
	}
	gap, err := windows.Session(cfg.Gap)
	if err != nil {
		return nil, fmt.Errorf("sessionize: --gap: %w", err)
	}
	gapMs := cfg.Gap.Milliseconds()
	t := topology.New()
	pv := topology.Source(t, cfg.Input, serde.Bytes(), views, topology.Named("page-views"),
		topology.WithTimestamps(func(_ []byte, v PageView, _ int64) (int64, error) { return v.TS, nil }),
		topology.WithWatermarks(windows.BoundedOutOfOrderness(cfg.OutOfOrderness)))
	byUser := topology.Map(pv, func(_ []byte, v PageView) (string, view, error) { return v.User, view{Page: v.Page}, nil },
		topology.Named("by-user"))
	sessions := topology.Aggregate(topology.WithSerdes(byUser, serde.String(), serde.JSON[view]()),
		windows.Spec{Assigner: gap, Grace: cfg.Grace}, sessionAgg, serde.JSON[acc](), topology.Named("sessions"))
	out := topology.MapValues(sessions, func(user string, w topology.Windowed[acc]) (Session, error) {
		return Session{User: user, Start: w.Window.Start, LastView: w.Window.End - gapMs,
			Views: w.Value.Views, Pages: w.Value.Pages, Truncated: w.Value.Truncated}, nil
	}, topology.Named("format"))
	topology.To(topology.WithSerdes(out, serde.String(), serde.JSON[Session]()), cfg.Output, topology.Named("sink"))
	return t, nil
}
