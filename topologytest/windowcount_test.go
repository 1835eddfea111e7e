package topologytest_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/topologytest"
	"github.com/weirstream/weir/windows"
)

// Window-count semantics (builtin.WindowCount with its defaults: 10s
// tumbling windows, watermark = max ts - 2s, grace 0) through the driver:
// four input partitions, the key change through the repartition topic,
// out-of-order input, a late record, idleness, restarts.

const base = int64(1_700_000_000_000) // a multiple of 10s

const (
	app   = "wc"
	input = "clicks"
	out   = "clicks-per-window"
	parts = 4
)

var repTopic = app + "-count-repartition"

func newWindowCount(t *testing.T, opts ...topologytest.Opt) *topologytest.Driver {
	t.Helper()
	top, err := builtin.WindowCount(builtin.DefaultWindowCount())
	if err != nil {
		t.Fatal(err)
	}
	d, err := topologytest.New(top, append([]topologytest.Opt{topologytest.AppID(app), topologytest.Partitions(parts)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func click(t *testing.T, d *topologytest.Driver, p int32, user string, ts int64) {
	t.Helper()
	if err := d.Pipe(input, p, nil, fmt.Appendf(nil, `{"user":%q,"ts":%d}`, user, ts), ts); err != nil {
		t.Fatal(err)
	}
}

// results returns the window-count output as "user start+offset count".
func results(t *testing.T, d *topologytest.Driver) []string {
	t.Helper()
	recs, err := topologytest.OutputOf(d, out, serde.String(), serde.JSON[builtin.WindowCountResult]())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		v := r.Value
		if v.Key != r.Key || v.WindowEnd-v.WindowStart != 10_000 {
			t.Errorf("bad result %+v for key %q", v, r.Key)
		}
		got = append(got, fmt.Sprintf("%s %+d %d", v.Key, v.WindowStart-base, v.Count))
	}
	slices.Sort(got)
	return got
}

func TestWindowCountThroughRepartition(t *testing.T) {
	d := newWindowCount(t, topologytest.IdleTimeout(0))
	if n := len(d.Tasks()); n != 2*parts {
		t.Fatalf("%d tasks, want %d (two sub-topologies of %d)", n, 2*parts, parts)
	}
	if n := d.Partitions(repTopic); n != parts {
		t.Fatalf("%s has %d partitions, want %d", repTopic, n, parts)
	}

	// Out of order within the 2s bound, on two of four partitions.
	click(t, d, 0, "u1", base+1000)
	click(t, d, 0, "u2", base+3000)
	click(t, d, 0, "u1", base+500)
	click(t, d, 1, "u1", base+2000)
	click(t, d, 1, "u2", base+9000)
	click(t, d, 1, "u1", base+11000) // window 1; p1 watermark base+9000
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	// Partitions 2 and 3 have said nothing: every downstream watermark is
	// unknown and nothing closes.
	if got := results(t, d); len(got) != 0 {
		t.Fatalf("results before every partition has a watermark: %v", got)
	}
	for p := range int32(parts) {
		if wm := d.Watermark(topology.TaskID{Subtopology: 1, Partition: p}); wm != windows.Unknown {
			t.Fatalf("downstream task 1_%d watermark %d, want unknown", p, wm)
		}
	}

	// Every partition past base+12000: watermarks reach base+10000.
	for p := range int32(parts) {
		click(t, d, p, "u3", base+12000+int64(p)*100)
	}
	if got := results(t, d); len(got) != 0 {
		t.Fatalf("results before a checkpoint carried the watermark across the repartition topic: %v", got)
	}
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	want := []string{"u1 +0 3", "u2 +0 2"}
	if got := results(t, d); !slices.Equal(got, want) {
		t.Fatalf("results = %q, want %q", got, want)
	}
	for p := range int32(parts) {
		if wm := d.Watermark(topology.TaskID{Subtopology: 1, Partition: p}); wm != base+10_000 {
			t.Errorf("downstream task 1_%d watermark %+d, want +10000 (the minimum over upstream tasks)", p, wm-base)
		}
	}
	controls := 0
	for _, r := range d.Output(repTopic) {
		if r.Control() {
			controls++
		}
	}
	if controls == 0 {
		t.Errorf("no control records on %s", repTopic)
	}

	// A click in the closed window goes to the late output, as read from
	// the repartition topic (key = user, value stripped).
	click(t, d, 2, "u1", base+100)
	late := d.Late()
	if len(late) != 1 {
		t.Fatalf("late output: %v, want one record", late)
	}
	l := late[0]
	if string(l.Key) != "u1" || l.Topic != app+"-late" || l.Timestamp != base+100 {
		t.Errorf("late record %v", l)
	}
	if w, _ := l.Header(topology.HeaderLateWindows); w != strconv.FormatInt(base, 10)+"-"+strconv.FormatInt(base+10_000, 10) {
		t.Errorf("late windows header %q", w)
	}
	if wm, _ := l.Header(topology.HeaderLateWatermark); wm != strconv.FormatInt(base+10_000, 10) {
		t.Errorf("late watermark header %q", wm)
	}
	if src, _ := l.Header(topology.HeaderSourceTopic); src != repTopic {
		t.Errorf("late source topic %q, want %q", src, repTopic)
	}

	// Far-future clicks close window 1.
	for p := range int32(parts) {
		click(t, d, p, "~close", base+3_600_000)
	}
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	want = []string{"u1 +0 3", "u1 +10000 1", "u2 +0 2", "u3 +10000 4"}
	if got := results(t, d); !slices.Equal(got, want) {
		t.Fatalf("results = %q, want %q", got, want)
	}
	// Results carry the window headers.
	for _, r := range d.Output(out) {
		if f, _ := r.Header(windows.HeaderFinal); f != "true" {
			t.Errorf("result %v: final header %q", r, f)
		}
	}
}

// TestWindowCountBatch: records appended together are one batch; the
// watermark moves after all of them, so an out-of-order record in the
// batch is not late even though a later one in the batch passed it.
func TestWindowCountBatch(t *testing.T) {
	d := newWindowCount(t, topologytest.Partitions(1), topologytest.IdleTimeout(0))
	in := func(user string, ts int64) {
		if err := d.Append(input, 0, nil, fmt.Appendf(nil, `{"user":%q,"ts":%d}`, user, ts), ts); err != nil {
			t.Fatal(err)
		}
	}
	in("a", base+1000)
	in("a", base+20_000) // watermark would be +18000
	in("a", base+2000)   // in the closed window if the watermark moved per record
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if got, want := results(t, d), []string{"a +0 2"}; !slices.Equal(got, want) {
		t.Fatalf("results = %q, want %q", got, want)
	}
	if n := len(d.Late()); n != 0 {
		t.Fatalf("%d late records, want 0", n)
	}
}

// TestWindowCountIdle: partitions that never get data hold windows back
// until they have been quiet for the idle timeout.
func TestWindowCountIdle(t *testing.T) {
	d := newWindowCount(t) // idle timeout 30s, the engine's default
	click(t, d, 0, "u1", base+1000)
	click(t, d, 0, "u1", base+15_000)
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if got := results(t, d); len(got) != 0 {
		t.Fatalf("results while partitions 1-3 are not idle yet: %v", got)
	}
	if err := d.AdvanceTime(31 * time.Second); err != nil {
		t.Fatal(err)
	}
	st := d.Watermarks(topology.TaskID{Subtopology: 0, Partition: 3})
	if len(st) != 1 || !st[0].Idle {
		t.Fatalf("task 0_3 partitions %+v, want one idle partition", st)
	}
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	// Partition 0 is idle too now (quiet for 31s), so window 0 closes
	// and so does window 1 (every partition idle: the max).
	if got, want := results(t, d), []string{"u1 +0 1"}; !slices.Equal(got, want) {
		t.Fatalf("results = %q, want %q", got, want)
	}
}

// TestWindowCountCrash: a crash after uncommitted work aborts its output
// and replays the input since the checkpoint: the final output is the
// same as without the crash, without duplicates, with the state kept or
// rebuilt from the changelog.
func TestWindowCountCrash(t *testing.T) {
	for _, mode := range []topologytest.StateMode{topologytest.KeepLocalState, topologytest.RestoreFromChangelog} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			d := newWindowCount(t, topologytest.IdleTimeout(0))
			for p := range int32(parts) {
				click(t, d, p, "u1", base+1000+int64(p))
				click(t, d, p, "u2", base+2000+int64(p))
			}
			if err := d.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			// Uncommitted: more clicks and a closed window 0 downstream.
			for p := range int32(parts) {
				click(t, d, p, "u1", base+5000+int64(p))
				click(t, d, p, "u3", base+13_000)
			}
			if err := d.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			for p := range int32(parts) {
				click(t, d, p, "u1", base+14_000) // window 1, uncommitted
			}
			click(t, d, 0, "u2", base+100) // late, uncommitted
			before := results(t, d)
			if len(before) != 2 || len(d.Late()) != 1 {
				t.Fatalf("before the crash: results %q, late %v; want window 0 closed and one late record", before, d.Late())
			}
			if err := d.Crash(mode); err != nil {
				t.Fatal(err)
			}
			if err := d.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			for p := range int32(parts) {
				click(t, d, p, "~close", base+3_600_000)
			}
			if err := d.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			want := []string{"u1 +0 8", "u1 +10000 4", "u2 +0 4", "u3 +10000 4"}
			if got := results(t, d); !slices.Equal(got, want) {
				t.Fatalf("results = %q, want %q (before the crash: %q)", got, want, before)
			}
			if n := len(d.Late()); n != 1 {
				t.Errorf("%d late records, want 1: the aborted one and its replay are one", n)
			}
		})
	}
}

// TestWindowCountRebalance moves the downstream tasks to a "new process"
// that restores their window state from the changelog.
func TestWindowCountRebalance(t *testing.T) {
	d := newWindowCount(t, topologytest.IdleTimeout(0))
	for p := range int32(parts) {
		click(t, d, p, "u1", base+1000)
	}
	var down []topology.TaskID
	for p := range int32(parts) {
		down = append(down, topology.TaskID{Subtopology: 1, Partition: p})
	}
	if err := d.Rebalance(topologytest.RestoreFromChangelog, down...); err != nil {
		t.Fatal(err)
	}
	if n := d.StoreLen("count-store"); n == 0 {
		t.Fatal("count-store is empty after the restore")
	}
	for p := range int32(parts) {
		click(t, d, p, "u1", base+2000)
		click(t, d, p, "~close", base+3_600_000)
	}
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if got, want := results(t, d), []string{"u1 +0 8"}; !slices.Equal(got, want) {
		t.Fatalf("results = %q, want %q", got, want)
	}
}

// TestWindowCountDLQ: malformed input goes to "<app>-dlq" with the
// engine's headers; with OnErrorSkip it is only listed.
func TestWindowCountDLQ(t *testing.T) {
	d := newWindowCount(t, topologytest.IdleTimeout(0))
	if err := d.Pipe(input, 2, []byte("k"), []byte(`{"user":"u1"}`), base); err != nil {
		t.Fatal(err)
	}
	dlq := d.DLQ()
	if len(dlq) != 1 {
		t.Fatalf("dlq = %v", dlq)
	}
	r := dlq[0]
	if string(r.Key) != "k" || string(r.Value) != `{"user":"u1"}` || r.Topic != app+"-dlq" {
		t.Errorf("dlq record %v", r)
	}
	for k, want := range map[string]string{
		topologytest.HeaderSourceTopic:     input,
		topologytest.HeaderSourcePartition: "2",
		topologytest.HeaderSourceOffset:    "0",
	} {
		if v, _ := r.Header(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if e, _ := r.Header(topologytest.HeaderError); e == "" {
		t.Error("no error header")
	}

	skip := newWindowCount(t, topologytest.OnError(topologytest.OnErrorSkip))
	if err := skip.Pipe(input, 0, nil, []byte(`nope`), base); err != nil {
		t.Fatal(err)
	}
	if len(skip.DLQ()) != 0 || len(skip.BadRecords()) != 1 {
		t.Errorf("skip: dlq %v, bad %v", skip.DLQ(), skip.BadRecords())
	}

	fail := newWindowCount(t, topologytest.OnError(topologytest.OnErrorFail))
	if err := fail.Pipe(input, 0, nil, []byte(`nope`), base); err == nil {
		t.Error("fail: Pipe of a bad record succeeded")
	}
}

func TestPipeErrors(t *testing.T) {
	d := newWindowCount(t)
	if err := d.Pipe("nope", 0, nil, nil, 0); err == nil {
		t.Error("Pipe to an unknown topic succeeded")
	}
	if err := d.Pipe(input, parts, nil, nil, 0); err == nil {
		t.Error("Pipe to a partition out of range succeeded")
	}
	if err := d.Pipe(out, 0, nil, nil, 0); err == nil {
		t.Error("Pipe to an output topic succeeded")
	}
	if _, err := topologytest.New(topology.New()); err == nil {
		t.Error("New of an empty topology succeeded")
	}
	if _, err := topologytest.New(topology.New(), topologytest.Partitions(0)); err == nil {
		t.Error("Partitions(0) accepted")
	}
}

// TestWindowCountOversizeKey: a user too long for a store key (70 KB) goes
// to the dead-letter topic as in the engine, its key cut to fit; the
// other clicks count.
func TestWindowCountOversizeKey(t *testing.T) {
	d := newWindowCount(t, topologytest.IdleTimeout(0))
	big := strings.Repeat("u", 70_000)
	click(t, d, 1, "u1", base+1)
	click(t, d, 1, big, base+2)
	click(t, d, 1, "u1", base+3)
	for p := range int32(parts) { // every partition's watermark passes the window
		click(t, d, p, "closer", base+20_000)
	}
	for range 2 { // the watermark crosses the repartition topic at checkpoints
		if err := d.Checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	dlq := d.DLQ()
	if len(dlq) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dlq))
	}
	r := dlq[0]
	e, _ := r.Header(topologytest.HeaderError)
	cut, _ := r.Header(topologytest.HeaderTruncated)
	size, _ := r.Header(topology.HeaderOriginalKeySize)
	if !strings.Contains(e, `store "count-store": key of `) || cut != "key" || size != "70000" || len(r.Key) != topology.DeadLetterMaxKey {
		t.Errorf("dead letter: key %d bytes, error %q, %s %q, original key size %q", len(r.Key), e, topologytest.HeaderTruncated, cut, size)
	}
	if got, want := results(t, d), []string{"u1 +0 2"}; !slices.Equal(got, want) {
		t.Fatalf("results = %q, want %q", got, want)
	}
}

// TestWindowCountOversizeOutput: a user so long that its repartition
// record would exceed topology.MaxOutputBytes fails at the repartition
// sink and goes to the dead-letter topic, its value cut to fit.
func TestWindowCountOversizeOutput(t *testing.T) {
	d := newWindowCount(t, topologytest.IdleTimeout(0))
	click(t, d, 2, strings.Repeat("u", topology.MaxOutputBytes+1), base+1)
	dlq := d.DLQ()
	if len(dlq) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dlq))
	}
	e, _ := dlq[0].Header(topologytest.HeaderError)
	cut, _ := dlq[0].Header(topologytest.HeaderTruncated)
	// The repartition record: the key, an empty value, and the header
	// naming its input record (weir.origin = clicks/2@0).
	size := topology.MaxOutputBytes + 1 + len(topology.HeaderOrigin) + len(input+"/2@0")
	if want := fmt.Sprintf(`topology: operator "count-sink": record of %d bytes for wc-count-repartition exceeds the limit of %d bytes (MaxOutputBytes)`, size, topology.MaxOutputBytes); e != want || cut != "value" {
		t.Errorf("dead letter: error %q, %s %q; want error %q, value cut", e, topologytest.HeaderTruncated, cut, want)
	}
	if len(d.Output(repTopic)) != 0 {
		t.Errorf("%s has records, want none", repTopic)
	}
}
