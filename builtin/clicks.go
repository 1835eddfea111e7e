package builtin

import (
	"encoding/json"
	"fmt"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
)

// Click is the demo's input event: a user viewed a page at event time TS
// (epoch ms). User and TS are required (see serde.JSON): a click without
// them, or with null for them, is refused instead of read as zero.
type Click struct {
	User string `json:"user" weir:"required"`
	Page string `json:"page"`
	TS   int64  `json:"ts" weir:"required"`
}

// UserCount is ClickCount's output value.
type UserCount struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// ClickCount reads JSON clicks from input, re-keys them by user (through a
// repartition topic, whatever the input's keys), and writes the running
// count per user to output as JSON {"key":..., "count":...} keyed by user.
//
// Its input contract: the value is a JSON object in UTF-8 with "user", a
// non-empty string, and "ts", an integer (epoch ms, the record's event
// time); "page" is an optional string; other fields and the record key
// are ignored. Anything else (null or missing user or ts, another JSON
// type, invalid UTF-8) goes to the error policy (the dead-letter topic by
// default) and is not counted.
func ClickCount(input, output string) *topology.Topology {
	t := topology.New()
	clicks := topology.Source(t, input, serde.Bytes(), serde.JSON[Click](), topology.Named("source"),
		topology.WithTimestamps(func(_ []byte, c Click, _ int64) (int64, error) { return c.TS, nil }))
	byUser := topology.SelectKey(clicks, func(_ []byte, c Click) (string, error) {
		if c.User == "" {
			return "", fmt.Errorf("click has no user")
		}
		return c.User, nil
	}, serde.String(), topology.Named("by-user"))
	counts := topology.Count(byUser, topology.Named("count"))
	out := topology.MapValues(counts, func(user string, n int64) (json.RawMessage, error) {
		return json.Marshal(UserCount{Key: user, Count: n})
	}, topology.Named("format"))
	topology.To(topology.WithSerdes(out, serde.String(), serde.JSON[json.RawMessage]()), output, topology.Named("sink"))
	return t
}
