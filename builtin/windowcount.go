package builtin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// WindowCountConfig configures WindowCount. Its fields mirror the flags of
// the window-count topology, with the same defaults (DefaultWindowCount).
type WindowCountConfig struct {
	Input          string        // default "clicks"
	Output         string        // default "clicks-per-window"
	KeyField       string        // default "user"
	Window         time.Duration // default 10s
	OutOfOrderness time.Duration // default 2s
	Grace          time.Duration // default 0
}

// DefaultWindowCount returns the defaults of the window-count contract.
func DefaultWindowCount() WindowCountConfig {
	return WindowCountConfig{Input: "clicks", Output: "clicks-per-window", KeyField: "user", Window: 10 * time.Second, OutOfOrderness: 2 * time.Second}
}

// WindowCountResult is the output value of WindowCount.
type WindowCountResult struct {
	Key         string `json:"key"`
	WindowStart int64  `json:"window_start"`
	WindowEnd   int64  `json:"window_end"`
	Count       int64  `json:"count"`
}

// event is the part of an input value WindowCount reads.
type event struct {
	Key string
	TS  int64
}

// WindowCount is the window-count contract, used by outside tools for
// cross-checks, so it stays stable:
//
//   - input: JSON objects such as {"user":"u1","page":"/a","ts":1700000000123};
//     event time is "ts" (epoch ms); the record key is ignored and the
//     topology re-keys by the value's KeyField through a repartition topic;
//   - the input contract: the value is a JSON object in valid UTF-8; its
//     KeyField is a non-empty string (the key) or a number (its JSON text
//     is the key, so 1 and 1.0 are two keys); "ts" is an integer; other
//     fields are ignored. Anything else (a null, boolean, object, array or
//     empty key field, a missing field, a null or fractional ts, invalid
//     UTF-8) is never counted: it goes to the error policy;
//   - tumbling event-time windows [start, start+Window) aligned to the epoch;
//     watermark = max ts seen minus OutOfOrderness, per partition, the
//     minimum over a task's partitions, carried across the repartition
//     topic by control records;
//   - output: one final record per (key, window) once the watermark passes
//     the window end plus Grace: record key = the key (UTF-8), value =
//     {"key":..,"window_start":..,"window_end":..,"count":..}, headers
//     weir.window.start, weir.window.end, weir.final, weir.result.id;
//   - late records go to "<app-id>-late" (as read from the repartition
//     topic: key = the key, empty value, timestamp = event time; headers
//     weir.origin.topic, weir.origin.partition and weir.origin.offset name
//     the input record); records outside the input contract to
//     "<app-id>-dlq" (with --on-error=dlq, the default), with an error
//     header naming the field and the problem (quoting at most 64 bytes of
//     the value).
func WindowCount(cfg WindowCountConfig) (*topology.Topology, error) {
	var errs []error
	if cfg.Input == "" || cfg.Output == "" {
		errs = append(errs, fmt.Errorf("window-count: --input and --output must name topics"))
	}
	if cfg.KeyField == "" {
		errs = append(errs, fmt.Errorf("window-count: --key-field must name a JSON field"))
	}
	if cfg.OutOfOrderness < 0 || cfg.Grace < 0 {
		errs = append(errs, fmt.Errorf("window-count: --out-of-orderness and --grace must not be negative"))
	}
	tumbling, err := windows.Tumbling(cfg.Window)
	if err != nil {
		errs = append(errs, fmt.Errorf("window-count: --window: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	t := topology.New()
	events := topology.Source(t, cfg.Input, serde.Bytes(), eventSerde{field: cfg.KeyField},
		topology.Named("source"),
		topology.WithTimestamps(func(_ []byte, e event, _ int64) (int64, error) { return e.TS, nil }),
		topology.WithWatermarks(windows.BoundedOutOfOrderness(cfg.OutOfOrderness)))
	byKey := topology.SelectKey(events, func(_ []byte, e event) (string, error) { return e.Key, nil },
		serde.String(), topology.Named("by-key"))
	// Only the timestamp crosses the repartition topic: the count needs
	// nothing else, and an empty value is the cheapest to carry.
	stamps := topology.MapValues(byKey, func(string, event) ([]byte, error) { return nil, nil }, topology.Named("strip"))
	counts := topology.Aggregate(topology.WithSerdes(stamps, serde.String(), serde.Bytes()),
		windows.Spec{Assigner: tumbling, Grace: cfg.Grace},
		windows.Count[[]byte](), serde.Int64(), topology.Named("count"))
	out := topology.MapValues(counts, func(key string, w topology.Windowed[int64]) (WindowCountResult, error) {
		return WindowCountResult{Key: key, WindowStart: w.Window.Start, WindowEnd: w.Window.End, Count: w.Value}, nil
	}, topology.Named("format"))
	topology.To(topology.WithSerdes(out, serde.String(), serde.JSON[WindowCountResult]()), cfg.Output, topology.Named("sink"))
	return t, nil
}

// eventSerde decodes the key field and "ts" of a JSON object, and refuses
// (with a *serde.DecodeError) every input the window-count contract does not
// define, so that no such record is counted under a made-up key.
type eventSerde struct{ field string }

func (s eventSerde) Encode(event) ([]byte, error) {
	return nil, errors.New("window-count: events are read, never written")
}

func (s eventSerde) Decode(b []byte) (event, error) {
	e, err := s.decode(b)
	if err != nil {
		return event{}, &serde.DecodeError{Serde: "window-count event", Err: err}
	}
	return e, nil
}

func (s eventSerde) decode(b []byte) (event, error) {
	// encoding/json would turn each invalid byte into U+FFFD: distinct
	// keys would be counted as one.
	if !utf8.Valid(b) {
		return event{}, errors.New("value is not valid UTF-8")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		if te := (*json.UnmarshalTypeError)(nil); errors.As(err, &te) {
			return event{}, fmt.Errorf("value is %s, want a JSON object", serde.Excerpt(bytes.TrimSpace(b)))
		}
		return event{}, err
	}
	if m == nil {
		return event{}, errors.New("value is null, want a JSON object")
	}
	raw, ok := m[s.field]
	if !ok {
		return event{}, fmt.Errorf("no %q field", s.field)
	}
	var e event
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &e.Key); err != nil {
			return event{}, fmt.Errorf("field %q: %w", s.field, err)
		}
		if e.Key == "" {
			return event{}, fmt.Errorf(`field %q is "", want a non-empty string or a number`, s.field)
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		e.Key = string(raw) // its JSON text: 1 and 1.0 are different keys
	default: // null, true, false, an object or an array
		return event{}, fmt.Errorf("field %q is %s, want a non-empty string or a number", s.field, serde.Excerpt(raw))
	}
	ts, ok := m["ts"]
	if !ok {
		return event{}, errors.New(`no "ts" field`)
	}
	// json.Unmarshal leaves e.TS alone for null: refuse it first.
	if ts[0] == 'n' || json.Unmarshal(ts, &e.TS) != nil {
		return event{}, fmt.Errorf(`"ts" is %s, want epoch milliseconds`, serde.Excerpt(ts))
	}
	return e, nil
}
