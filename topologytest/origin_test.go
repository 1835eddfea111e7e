package topologytest_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/topologytest"
	"github.com/weirstream/weir/windows"
)

// Where records came from, across repartition topics, and what is set aside
// when something fails outside a record (window results, timers).

// wantHeaders reports every header of want that r lacks or has with
// another value.
func wantHeaders(t *testing.T, what string, r topologytest.Record, want map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if v, ok := r.Header(k); !ok || v != want[k] {
			t.Errorf("%s: header %s = %q (present %v), want %q; record %v headers %q", what, k, v, ok, want[k], r, r.Headers)
		}
	}
}

// TestLateRecordOrigin: window-count re-keys through a repartition topic
// and strips the value; a late click reaches "<app>-late" with headers
// naming the input record it came from (weir.origin.*), besides where the
// window operator's task read it (weir.source.*: the repartition topic).
func TestLateRecordOrigin(t *testing.T) {
	d := newWindowCount(t, topologytest.IdleTimeout(0))
	for p := range int32(parts) {
		click(t, d, p, "u1", base+1000)
		click(t, d, p, "u1", base+12_000) // watermark 10s: window 0 closes
	}
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	click(t, d, 2, "u1", base+500) // late: input partition 2, offset 2
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	late := d.Late()
	if len(late) != 1 {
		t.Fatalf("late = %v, want one record", late)
	}
	var rep *topologytest.Record
	for _, r := range d.Output(repTopic) {
		if !r.Control() && r.Timestamp == base+500 {
			if rep != nil {
				t.Fatalf("two records of the late click in %s: %v and %v", repTopic, *rep, r)
			}
			rep = &r
		}
	}
	if rep == nil {
		t.Fatalf("no record of the late click in %s", repTopic)
	}
	wantHeaders(t, "late record", late[0], map[string]string{
		"weir.origin.topic":            input,
		"weir.origin.partition":        "2",
		"weir.origin.offset":           "2",
		topology.HeaderSourceTopic:     repTopic,
		topology.HeaderSourcePartition: strconv.Itoa(int(rep.Partition)),
		topology.HeaderSourceOffset:    strconv.FormatInt(rep.Offset, 10),
		topology.HeaderLateOperator:    "count",
	})
	// The late record is the record as the window operator read it.
	if string(late[0].Key) != "u1" || len(late[0].Value) != 0 || late[0].Timestamp != base+500 {
		t.Errorf("late record %v, want key u1, empty value, timestamp %d", late[0], base+500)
	}
	// The results never carry origin headers: a result is no one record's.
	recs := d.Output(out)
	if len(recs) == 0 {
		t.Fatal("no results")
	}
	for _, r := range recs {
		for _, h := range r.Headers {
			if strings.HasPrefix(h.Key, "weir.origin") {
				t.Errorf("result %v has header %s", r, h.Key)
			}
		}
	}
}

// TestOriginAcrossTwoRepartitions: the origin headers are set at the first
// repartition and kept at the next one; a record dead-lettered after the
// second still names the input record; outputs do not carry them.
func TestOriginAcrossTwoRepartitions(t *testing.T) {
	str := serde.String()
	top := topology.New()
	in := topology.Source(top, "words", str, str, topology.Named("source"))
	byWord := topology.SelectKey(in, func(_, v string) (string, error) { return v, nil }, str, topology.Named("by-word"))
	firsts := topology.Process(byWord, func(*topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
		return func(_ *topology.Context, r topology.Record[string, string], out func(topology.Record[string, string]) error) error {
			return out(r)
		}, nil
	}, topology.Named("hop1"))
	byLen := topology.SelectKey(topology.WithSerdes(firsts, str, str), func(k, _ string) (string, error) { return strconv.Itoa(len(k)), nil }, str, topology.Named("by-len"))
	checked := topology.Process(byLen, func(*topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
		return func(_ *topology.Context, r topology.Record[string, string], out func(topology.Record[string, string]) error) error {
			if r.Value == "bad" {
				return errors.New("no bad words")
			}
			return out(r)
		}, nil
	}, topology.Named("hop2"))
	topology.To(topology.WithSerdes(checked, str, str), "out", topology.Named("sink"))

	d, err := topologytest.New(top, topologytest.AppID("two"), topologytest.Partitions(3))
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []string{"ok", "fine", "bad"} {
		if err := d.Pipe("words", 1, nil, []byte(w), int64(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, topic := range []string{"two-hop1-repartition", "two-hop2-repartition"} {
		var got []string
		for _, r := range d.Output(topic) {
			if r.Control() {
				continue
			}
			o, _ := r.Header("weir.origin")
			got = append(got, string(r.Value)+" "+o)
			if n := countHeader(r, "weir.origin"); n != 1 || r.Headers[len(r.Headers)-1].Key != "weir.origin" {
				t.Errorf("%s: %v has headers %q, want one weir.origin, last", topic, r, r.Headers)
			}
		}
		slices.Sort(got)
		if want := []string{"bad words/1@2", "fine words/1@1", "ok words/1@0"}; !slices.Equal(got, want) {
			t.Errorf("%s: origins %q, want %q", topic, got, want)
		}
	}
	dlq := d.DLQ()
	if len(dlq) != 1 {
		t.Fatalf("dlq = %v, want the bad word", dlq)
	}
	wantHeaders(t, "dead letter", dlq[0], map[string]string{"weir.origin": "words/1@2"})
	if v, _ := dlq[0].Header(topologytest.HeaderSourceTopic); v != "two-hop2-repartition" {
		t.Errorf("dead letter source topic %q, want the repartition topic it was read from", v)
	}
	outs := d.Output("out")
	if len(outs) != 2 {
		t.Fatalf("out = %v, want ok and fine", outs)
	}
	for _, r := range outs {
		if len(r.Headers) != 0 {
			t.Errorf("output %v has headers %q, want none (the input had none)", r, r.Headers)
		}
	}
}

func countHeader(r topologytest.Record, key string) int {
	n := 0
	for _, h := range r.Headers {
		if h.Key == key {
			n++
		}
	}
	return n
}

// windowedSerde encodes a count window result as "start-end:count" and
// fails for counts of failAt.
type windowedSerde struct{ failAt int64 }

func (s windowedSerde) Encode(w topology.Windowed[int64]) ([]byte, error) {
	if w.Value == s.failAt {
		return nil, fmt.Errorf("count %d does not fit", w.Value)
	}
	return fmt.Appendf(nil, "%d-%d:%d", w.Window.Start, w.Window.End, w.Value), nil
}

func (windowedSerde) Decode([]byte) (topology.Windowed[int64], error) {
	return topology.Windowed[int64]{}, errors.New("not read")
}

// TestWindowResultEncodeFailure: a window result whose value the sink
// cannot encode is dead-lettered as itself (its key, the accumulator's
// bytes, the window headers, the error), not as the input record that
// moved the watermark; the windows beside it are emitted.
func TestWindowResultEncodeFailure(t *testing.T) {
	str := serde.String()
	tumbling, err := windows.Tumbling(10 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	top := topology.New()
	in := topology.Source(top, "in", str, str, topology.Named("source"))
	counts := topology.Aggregate(in, windows.Spec{Assigner: tumbling}, windows.Count[string](), serde.Int64(), topology.Named("count"))
	topology.To(topology.WithSerdes(counts, str, serde.Serde[topology.Windowed[int64]](windowedSerde{failAt: 2})), "out", topology.Named("sink"))
	d, err := topologytest.New(top, topologytest.AppID("enc"), topologytest.Partitions(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		k  string
		ts int64
	}{{"a", 1}, {"a", 2}, {"b", 3}, {"c", 100}} {
		if err := d.Pipe("in", 0, []byte(r.k), []byte("x"), r.ts); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, r := range d.Output("out") {
		got = append(got, string(r.Key)+"="+string(r.Value))
	}
	if want := []string{"b=0-10:1"}; !slices.Equal(got, want) {
		t.Errorf("out = %q, want %q", got, want)
	}
	dlq := d.DLQ()
	if len(dlq) != 1 {
		t.Fatalf("dlq = %v, want window [0,10) of a", dlq)
	}
	r := dlq[0]
	two, _ := serde.Int64().Encode(2)
	if string(r.Key) != "a" || string(r.Value) != string(two) || r.Timestamp != 9 {
		t.Errorf("dead letter %v, want key a, the accumulator 2 (%x), timestamp 9", r, two)
	}
	wantHeaders(t, "dead letter", r, map[string]string{
		windows.HeaderWindowStart:          "0",
		windows.HeaderWindowEnd:            "10",
		windows.HeaderFinal:                "true",
		windows.HeaderResultID:             windows.ResultID("enc", "count", []byte("a"), windows.Window{Start: 0, End: 10}),
		"weir.emit.operator":               "count",
		topologytest.HeaderSourceTopic:     "",
		topologytest.HeaderSourceOffset:    "-1",
		topologytest.HeaderSourcePartition: "0",
	})
	if e, _ := r.Header(topologytest.HeaderError); !strings.Contains(e, "count 2 does not fit") || !strings.Contains(e, "[0,10)") {
		t.Errorf("error header %q, want the encode error and the window", e)
	}
}

// TestTimerContextAfterRestart: a timer that fires after a restart, before
// any record, reads the record accessors of its Context: they say "no
// record" ("", -1, -1) instead of panicking, as they do for a timer that
// fires after records were processed.
func TestTimerContextAfterRestart(t *testing.T) {
	str := serde.String()
	var seen []string
	top := topology.New()
	in := topology.Source(top, "in", str, str, topology.Named("source"))
	fired := topology.ProcessTimed(in, func(_ *topology.Context, timers *topology.Timers[string]) (topology.TimedProcessor[string, string, string, string], error) {
		return topology.TimedProcessor[string, string, string, string]{
			Process: func(ctx *topology.Context, r topology.Record[string, string], _ func(topology.Record[string, string]) error) error {
				seen = append(seen, fmt.Sprintf("record %s/%d@%d", ctx.Topic(), ctx.Partition(), ctx.Offset()))
				return timers.Register(topology.ProcessingTime, r.Key, ctx.ProcessingTime().UnixMilli()+int64(r.Timestamp))
			},
			OnTimer: func(ctx *topology.Context, tm topology.Timer[string], out func(topology.Record[string, string]) error) error {
				seen = append(seen, fmt.Sprintf("timer %s %q/%d@%d", tm.Key, ctx.Topic(), ctx.Partition(), ctx.Offset()))
				return out(topology.Record[string, string]{Key: tm.Key, Value: "fired", Timestamp: tm.Time})
			},
		}, nil
	}, topology.Named("expire"))
	topology.To(topology.WithSerdes(fired, str, str), "out", topology.Named("sink"))
	d, err := topologytest.New(top, topologytest.AppID("tm"), topologytest.Partitions(1))
	if err != nil {
		t.Fatal(err)
	}
	// a's timer in 1s, b's in 5s.
	if err := d.Pipe("in", 0, []byte("a"), []byte("x"), 1000); err != nil {
		t.Fatal(err)
	}
	if err := d.Pipe("in", 0, []byte("b"), []byte("x"), 5000); err != nil {
		t.Fatal(err)
	}
	if err := d.AdvanceTime(2 * time.Second); err != nil { // a fires
		t.Fatal(err)
	}
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := d.Crash(topologytest.KeepLocalState); err != nil {
		t.Fatal(err)
	}
	if err := d.AdvanceTime(5 * time.Second); err != nil { // b fires, no record since the restart
		t.Fatal(err)
	}
	want := []string{"record in/0@0", "record in/0@1", `timer a ""/-1@-1`, `timer b ""/-1@-1`}
	if !slices.Equal(seen, want) {
		t.Errorf("seen %q, want %q", seen, want)
	}
	if n := len(d.Output("out")); n != 2 {
		t.Errorf("%d timer outputs, want 2", n)
	}
}

// TestTimerFailure: a timer whose handler fails is dead-lettered as
// itself (its key, time and domain, the error), also right after a
// restart when the task has read no record, and the timers that fired
// with it still run.
func TestTimerFailure(t *testing.T) {
	str := serde.String()
	top := topology.New()
	in := topology.Source(top, "in", str, str, topology.Named("source"))
	fired := topology.ProcessTimed(in, func(_ *topology.Context, timers *topology.Timers[string]) (topology.TimedProcessor[string, string, string, string], error) {
		return topology.TimedProcessor[string, string, string, string]{
			Process: func(_ *topology.Context, r topology.Record[string, string], _ func(topology.Record[string, string]) error) error {
				return timers.Register(topology.EventTime, r.Key, 50)
			},
			OnTimer: func(_ *topology.Context, tm topology.Timer[string], out func(topology.Record[string, string]) error) error {
				if strings.HasPrefix(tm.Key, "bad") {
					return fmt.Errorf("timer of %s refused", tm.Key)
				}
				return out(topology.Record[string, string]{Key: tm.Key, Value: "fired", Timestamp: tm.Time})
			},
		}, nil
	}, topology.Named("expire"))
	topology.To(topology.WithSerdes(fired, str, str), "out", topology.Named("sink"))
	d, err := topologytest.New(top, topologytest.AppID("tf"), topologytest.Partitions(1))
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []string{"bad-a", "good", "bad-c"} {
		if err := d.Pipe("in", 0, []byte(k), []byte("x"), int64(10+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := d.Crash(topologytest.KeepLocalState); err != nil {
		t.Fatal(err)
	}
	// The restarted task's watermark starts unknown: the next record
	// moves it past 50, and the timers fire.
	if err := d.Pipe("in", 0, []byte("z"), []byte("x"), 100); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range d.Output("out") {
		got = append(got, string(r.Key))
	}
	if want := []string{"good", "z"}; !slices.Equal(got, want) { // good fires after both bad ones
		t.Errorf("out = %q, want %q", got, want)
	}
	dlq := d.DLQ()
	if len(dlq) != 2 {
		t.Fatalf("dlq = %v, want the timers of bad-a and bad-c", dlq)
	}
	for i, k := range []string{"bad-a", "bad-c"} {
		r := dlq[i]
		if string(r.Key) != k || r.Value != nil || r.Timestamp != 50 {
			t.Errorf("dead letter %d: %v, want key %s, no value, timestamp 50", i, r, k)
		}
		wantHeaders(t, "dead letter", r, map[string]string{
			"weir.emit.operator":               "expire",
			"weir.timer.time":                  "50",
			"weir.timer.domain":                "event-time",
			topologytest.HeaderSourceTopic:     "",
			topologytest.HeaderSourceOffset:    "-1",
			topologytest.HeaderSourcePartition: "0",
		})
		if e, _ := r.Header(topologytest.HeaderError); !strings.Contains(e, "timer of "+k+" refused") || !strings.Contains(e, `"expire"`) {
			t.Errorf("error header %q, want the handler's error naming the operator", e)
		}
	}
}

// failingInt64 is serde.Int64 whose Encode fails for one value.
type failingInt64 struct{ failAt int64 }

func (s failingInt64) Encode(v int64) ([]byte, error) {
	if v == s.failAt {
		return nil, fmt.Errorf("%d does not fit", v)
	}
	return serde.Int64().Encode(v)
}

func (failingInt64) Decode(b []byte) (int64, error) { return serde.Int64().Decode(b) }

// TestCombineEmitFailure: a combined record the repartition sink cannot
// encode is dead-lettered as itself (its key, the latest event time, the
// operator), not as the input record processed last; the others go on.
func TestCombineEmitFailure(t *testing.T) {
	tumbling, err := windows.Tumbling(10 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	top := topology.New()
	src := topology.Source(top, "words", serde.Bytes(), serde.String(), topology.Named("source"))
	words := topology.Map(src, func(_ []byte, w string) (string, int64, error) { return w, 1, nil }, topology.Named("by-word"))
	words = topology.WithSerdes(words, serde.String(), serde.Int64())
	pre := topology.WithSerdes(topology.Combine(words, tumbling, windows.Sum[int64](), topology.Named("pre-count")), serde.String(), serde.Int64())
	pre = topology.WithSerdes(pre, serde.String(), serde.Serde[int64](failingInt64{failAt: 2}))
	counts := topology.Aggregate(pre, windows.Spec{Assigner: tumbling}, windows.Sum[int64](), serde.Int64(), topology.Named("count"))
	out := topology.MapValues(counts, func(w string, r topology.Windowed[int64]) (string, error) {
		return fmt.Sprintf("%s [%d,%d) %d", w, r.Window.Start, r.Window.End, r.Value), nil
	}, topology.Named("format"))
	topology.To(topology.WithSerdes(out, serde.String(), serde.String()), "counts", topology.Named("sink"))
	d, err := topologytest.New(top, topologytest.AppID("ce"), topologytest.Partitions(1))
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []string{"x", "y", "x", "z"} {
		if err := d.Append("words", 0, nil, []byte(w), int64(1+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Run(); err != nil {
		t.Fatal(err)
	}
	dlq := d.DLQ()
	if len(dlq) != 1 {
		t.Fatalf("dlq = %v, want x's combined record", dlq)
	}
	r := dlq[0]
	if string(r.Key) != "x" || r.Timestamp != 3 {
		t.Errorf("dead letter %v, want key x, timestamp 3", r)
	}
	wantHeaders(t, "dead letter", r, map[string]string{
		"weir.emit.operator":            "pre-count",
		topologytest.HeaderSourceTopic:  "",
		topologytest.HeaderSourceOffset: "-1",
	})
	if e, _ := r.Header(topologytest.HeaderError); !strings.Contains(e, "2 does not fit") {
		t.Errorf("error header %q, want the encode error", e)
	}
	var keys []string
	for _, r := range d.Output("ce-count-repartition") {
		if !r.Control() {
			keys = append(keys, string(r.Key))
		}
	}
	slices.Sort(keys)
	if want := []string{"y", "z"}; !slices.Equal(keys, want) {
		t.Errorf("repartition records of %q, want %q", keys, want)
	}
}

// TestCorruptTimerStops: a timer store entry that is no timer (too short
// to hold a time) stops the task with an error naming the operator,
// instead of panicking or dead-lettering an unrelated input record at
// every batch.
func TestCorruptTimerStops(t *testing.T) {
	str := serde.String()
	top := topology.New()
	in := topology.Source(top, "in", str, str, topology.Named("source"))
	fired := topology.ProcessTimed(in, func(_ *topology.Context, timers *topology.Timers[string]) (topology.TimedProcessor[string, string, string, string], error) {
		return topology.TimedProcessor[string, string, string, string]{
			Process: func(*topology.Context, topology.Record[string, string], func(topology.Record[string, string]) error) error {
				return nil
			},
			OnTimer: func(*topology.Context, topology.Timer[string], func(topology.Record[string, string]) error) error {
				return nil
			},
		}, nil
	}, topology.Named("expire"))
	topology.To(topology.WithSerdes(fired, str, str), "out", topology.Named("sink"))
	d, err := topologytest.New(top, topologytest.AppID("ct"), topologytest.Partitions(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Pipe("in", 0, []byte("a"), []byte("x"), 10); err != nil {
		t.Fatal(err)
	}
	st, err := d.Store(topology.TaskID{}, "expire-timers")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put([]byte("p\x00"), nil); err != nil { // processing-time domain, 1 byte of time
		t.Fatal(err)
	}
	err = d.AdvanceTime(time.Second)
	if err == nil || !strings.Contains(err.Error(), `"expire"`) || !strings.Contains(err.Error(), "corrupt timer") {
		t.Errorf("AdvanceTime = %v, want an error naming the operator and the corrupt timer", err)
	}
	if n := len(d.DLQ()); n != 0 {
		t.Errorf("%d dead letters, want none: the input record did nothing wrong", n)
	}
}
