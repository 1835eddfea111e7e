package integration

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// errForbidden is what pageTopology's operator returns for page "/forbidden".
var errForbidden = errors.New("page /forbidden is not allowed")

// pageTopology reads JSON clicks and writes "user page" keyed as the input;
// its "check" operator fails for page "/forbidden".
func pageTopology(in, out string) *topology.Topology {
	t := topology.New()
	s := topology.Source(t, in, serde.String(), serde.JSON[builtin.Click](), topology.Named("source"))
	checked := topology.MapValues(s, func(_ string, c builtin.Click) (builtin.Click, error) {
		if c.Page == "/forbidden" {
			return c, errForbidden
		}
		return c, nil
	}, topology.Named("check"))
	text := topology.MapValues(checked, func(_ string, c builtin.Click) (string, error) {
		return c.User + " " + c.Page, nil
	}, topology.Named("format"))
	topology.To(topology.WithSerdes(text, serde.String(), serde.String()), out, topology.Named("sink"))
	return t
}

// TestBadInputGoesToDLQ mixes undecodable records and records the user
// function rejects among good ones: each bad record is in "<app>-dlq" once
// with its original key, value and headers plus the four weir headers
// (error text, source topic, partition, offset: exact values), and the good
// records' outputs are exact.
func TestBadInputGoesToDLQ(t *testing.T) {
	t.Parallel()
	errs := capErrors(t)
	const (
		in, out = "raw-clicks", "pages"
		app     = "bad-input"
		nRecs   = 600
	)
	c := newCluster(t)
	c.createTopic(in, 8)
	r := startEngine(t, c, pageTopology(in, out), app, nil)

	type bad struct {
		rec *kgo.Record
		err string // the weir.error header
	}
	decodeErr := func(value []byte) string {
		_, err := serde.JSON[builtin.Click]().Decode(value)
		if err == nil {
			t.Fatalf("value %q decodes", value)
		}
		return (&topology.SourceError{Operator: "source", Err: fmt.Errorf("value: %w", err)}).Error()
	}
	operatorErr := (&topology.OperatorError{Operator: "check", Err: errForbidden}).Error()
	malformed := [][]byte{
		[]byte(`{"user":"u1","page":`), // truncated
		[]byte(`not json`),
		[]byte(`{"user":"u1"} trailing`),
		[]byte(`{"user":7}`), // wrong type
		nil,                  // a tombstone
		[]byte(`[]`),
	}
	var recs []*kgo.Record
	var want []kv
	var bads []*bad
	for i := range nRecs {
		key := fmt.Sprintf("k%02d", i%40)
		rec := &kgo.Record{Topic: in, Key: []byte(key), Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte(strconv.Itoa(i))}}}
		switch {
		case i%25 == 7:
			rec.Value = malformed[(i/25)%len(malformed)]
			bads = append(bads, &bad{rec: rec, err: decodeErr(rec.Value)})
		case i%25 == 19:
			rec.Value = fmt.Appendf(nil, `{"user":"u%d","page":"/forbidden","ts":%d}`, i, i)
			bads = append(bads, &bad{rec: rec, err: operatorErr})
		default:
			rec.Value = fmt.Appendf(nil, `{"user":"u%d","page":"/p%d","ts":%d}`, i, i, i)
			want = append(want, kv{key, fmt.Sprintf("u%d /p%d", i, i)})
		}
		recs = append(recs, rec)
	}
	c.produce(recs) // sets each record's partition and offset

	got := c.readOutput(app, r.e.Plan().SourceTopics(), out, len(want))
	sameMultiset(t, "good records' output", kvs(got), want)

	dlq := engine.DLQTopic(app)
	if dlq != app+"-dlq" {
		t.Errorf("DLQTopic(%q) = %q, want %q", app, dlq, app+"-dlq")
	}
	dead := c.consume(dlq, len(bads))
	c.assertComplete(dlq, dead)
	type origin struct {
		partition int32
		offset    int64
	}
	byOrigin := make(map[origin]*bad)
	for _, b := range bads {
		byOrigin[origin{b.rec.Partition, b.rec.Offset}] = b
	}
	for _, d := range dead {
		h := d.Headers
		if len(h) != 5 {
			errs.Errorf("dlq record %d: headers %v, want the original one and four weir headers", d.Offset, h)
			continue
		}
		p, perr := strconv.ParseInt(string(h[3].Value), 10, 32)
		o, oerr := strconv.ParseInt(string(h[4].Value), 10, 64)
		if perr != nil || oerr != nil {
			errs.Errorf("dlq record %d: partition %q, offset %q", d.Offset, h[3].Value, h[4].Value)
			continue
		}
		b, ok := byOrigin[origin{int32(p), o}]
		if !ok {
			errs.Errorf("dlq record %d names %s[%d]@%d: not a bad record, or twice", d.Offset, h[2].Value, p, o)
			continue
		}
		delete(byOrigin, origin{int32(p), o})
		wantHeaders := []kgo.RecordHeader{
			b.rec.Headers[0],
			{Key: engine.HeaderError, Value: []byte(b.err)},
			{Key: engine.HeaderSourceTopic, Value: []byte(in)},
			{Key: engine.HeaderSourcePartition, Value: []byte(strconv.Itoa(int(b.rec.Partition)))},
			{Key: engine.HeaderSourceOffset, Value: []byte(strconv.FormatInt(b.rec.Offset, 10))},
		}
		if !slices.EqualFunc(h, wantHeaders, func(a, b kgo.RecordHeader) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }) {
			errs.Errorf("dlq record for %s[%d]@%d: headers\n%s\nwant\n%s", in, p, o, fmtHeaders(h), fmtHeaders(wantHeaders))
		}
		if !bytes.Equal(d.Key, b.rec.Key) || !bytes.Equal(d.Value, b.rec.Value) || (d.Value == nil) != (b.rec.Value == nil) {
			errs.Errorf("dlq record for %s[%d]@%d: key %q value %q, want the original key %q value %q", in, p, o, d.Key, d.Value, b.rec.Key, b.rec.Value)
		}
		if !d.Timestamp.Equal(b.rec.Timestamp) {
			errs.Errorf("dlq record for %s[%d]@%d: timestamp %v, want the original %v", in, p, o, d.Timestamp, b.rec.Timestamp)
		}
	}
	for o, b := range byOrigin {
		t.Errorf("bad record %s[%d]@%d (value %q) is not in %s", in, o.partition, o.offset, b.rec.Value, dlq)
	}
}

func fmtHeaders(hs []kgo.RecordHeader) string {
	var b bytes.Buffer
	for _, h := range hs {
		fmt.Fprintf(&b, "  %s=%q\n", h.Key, h.Value)
	}
	return b.String()
}

// countOver3Serde encodes a window count as text and fails for counts
// above 2.
type countOver3Serde struct{}

func (countOver3Serde) Encode(w topology.Windowed[int64]) ([]byte, error) {
	if w.Value > 2 {
		return nil, fmt.Errorf("count %d does not fit", w.Value)
	}
	return strconv.AppendInt(nil, w.Value, 10), nil
}

func (countOver3Serde) Decode([]byte) (topology.Windowed[int64], error) {
	return topology.Windowed[int64]{}, errors.New("not read")
}

// TestWindowResultEncodeFailureGoesToDLQ: a window result the sink cannot
// encode reaches "<app>-dlq" as itself (key, the accumulator's bytes, the
// window headers, the emitting operator, the error; read from no topic),
// not as the input record that moved the watermark; the window beside it
// is emitted and nothing else is dead-lettered.
func TestWindowResultEncodeFailureGoesToDLQ(t *testing.T) {
	t.Parallel()
	const (
		in, out = "page-views", "views-per-window"
		app     = "window-encode"
	)
	tumbling, err := windows.Tumbling(time.Duration(windowSize) * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	top := topology.New()
	s := topology.Source(top, in, serde.String(), serde.String(), topology.Named("source"))
	counts := topology.Aggregate(s, windows.Spec{Assigner: tumbling}, windows.Count[string](), serde.Int64(), topology.Named("count"))
	topology.To(topology.WithSerdes(counts, serde.String(), serde.Serde[topology.Windowed[int64]](countOver3Serde{})), out, topology.Named("sink"))

	c := newCluster(t)
	c.createTopic(in, 1)
	r := startEngine(t, c, top, app, nil)
	base := alignedBase()
	var recs []*kgo.Record
	for i, k := range []string{"a", "a", "b", "a"} {
		recs = append(recs, &kgo.Record{Topic: in, Key: []byte(k), Value: []byte("v"), Timestamp: time.UnixMilli(base + int64(i))})
	}
	// Moves the watermark past the first window's end.
	recs = append(recs, &kgo.Record{Topic: in, Key: []byte("closer"), Value: []byte("v"), Timestamp: time.UnixMilli(base + 2*windowSize)})
	c.produce(recs)

	got := c.readOutput(app, r.e.Plan().SourceTopics(), out, 1)
	if string(got[0].Key) != "b" || string(got[0].Value) != "1" {
		t.Errorf("output %q=%q, want b=1", got[0].Key, got[0].Value)
	}
	dlq := engine.DLQTopic(app)
	dead := c.consume(dlq, 1)
	c.assertComplete(dlq, dead)
	d := dead[0]
	three, _ := serde.Int64().Encode(3)
	if string(d.Key) != "a" || !bytes.Equal(d.Value, three) || d.Timestamp.UnixMilli() != base+windowSize-1 {
		t.Errorf("dead letter %q=%x at %d, want a=%x (the accumulator) at %d", d.Key, d.Value, d.Timestamp.UnixMilli(), three, base+windowSize-1)
	}
	w := windows.Window{Start: base, End: base + windowSize}
	for k, want := range map[string]string{
		windows.HeaderWindowStart:    strconv.FormatInt(w.Start, 10),
		windows.HeaderWindowEnd:      strconv.FormatInt(w.End, 10),
		windows.HeaderFinal:          "true",
		windows.HeaderResultID:       windows.ResultID(app, "count", []byte("a"), w),
		topology.HeaderEmitOperator:  "count",
		engine.HeaderSourceTopic:     "",
		engine.HeaderSourcePartition: "0",
		engine.HeaderSourceOffset:    "-1",
	} {
		if v, ok := headerOf(d, k); !ok || v != want {
			t.Errorf("dead letter header %s = %q (present %v), want %q", k, v, ok, want)
		}
	}
	if e, _ := headerOf(d, engine.HeaderError); !strings.Contains(e, "count 3 does not fit") {
		t.Errorf("dead letter error %q, want the encode error", e)
	}
}
