package integration

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// Window-count input shape shared by the tests: the contract's defaults
// (10s tumbling windows, watermark = max event time - 2s, grace 0) and
// clicks whose timestamps trail an advancing clock by less than 1.5s.
//
// No such click is late. Within one input partition a click's timestamp is
// more than max-seen - 1.5s, so more than the partition's watermark
// (max-seen - 2s), so inside a window that is still open. Downstream of the
// repartition topic a task's watermark is the minimum of the upstream
// tasks' control records, and an upstream task writes a click to a
// repartition partition before the control record of any watermark that
// click's partition reached afterwards (same producer, same partition), so
// a click always meets a downstream watermark below its own timestamp.
//
// Idleness is off in these tests (IdleTimeout 0) except where it is the
// subject: an input partition idle before its clicks arrive would drop out
// of the minimum and let the watermark pass them.
const (
	clickJitter  = 1500 * time.Millisecond
	outOfOrder   = 2000 // ms, builtin.DefaultWindowCount().OutOfOrderness
	closingUser  = "~close"
	windowsParts = 8
)

// windowCount returns the window-count topology with the contract's
// defaults, writing to output.
func windowCount(t *testing.T, input, output string) *topology.Topology {
	t.Helper()
	cfg := builtin.DefaultWindowCount()
	cfg.Input, cfg.Output = input, output
	if cfg.OutOfOrderness.Milliseconds() != outOfOrder || cfg.Window.Milliseconds() != windowSize || cfg.Grace != 0 {
		t.Fatalf("window-count defaults changed: %+v", cfg)
	}
	top, err := builtin.WindowCount(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func windowEngine(dir string, idle time.Duration) func(*engine.Config) {
	return func(cfg *engine.Config) {
		cfg.StateDir = dir
		cfg.SessionTimeout = sessionTimeout
		cfg.IdleTimeout = idle
	}
}

// closers returns one click per partition far in the future, by a user
// outside the oracle: every partition's watermark passes every real
// window, so they all close; the closers' own window never does.
func closers(ts int64) []click {
	cs := make([]click, windowsParts)
	for p := range cs {
		cs[p] = click{user: closingUser, ts: ts, part: int32(p)}
	}
	return cs
}

// TestWindowCountTwoEngines runs window-count on two engines over 8 input
// partitions, with clicks shuffled within the jitter bound and spread over
// the partitions at random, then a far-future click on every partition.
// The output holds exactly one final result per (user, window), with the
// oracle's count and the contract's headers, and nothing is late.
func TestWindowCountTwoEngines(t *testing.T) {
	t.Parallel()
	const (
		in, out = "clicks", "clicks-per-window"
		app     = "wc-two"
	)
	c := newCluster(t)
	c.createTopic(in, windowsParts)
	start := func() *runner {
		return startEngine(t, c, windowCount(t, in, out), app, windowEngine(t.TempDir(), 0))
	}
	a, b := start(), start()
	down, rep := downstreamTasks(t, a, windowsParts)
	waitSplit(t, a, b, append(allTasks(0, windowsParts), down...))

	base := alignedBase()
	cs := genClicks(42, 2400, 20, base, 60*time.Second, clickJitter, windowsParts)
	final := closers(base + time.Hour.Milliseconds())
	pr := manualProducer(t, c)
	produceWith(t, pr, clickRecords(t, in, cs, "c"))
	produceWith(t, pr, clickRecords(t, in, final, "close"))

	// The closers' watermark passes every window of cs.
	want := windowOracle(cs, final[0].ts-outOfOrder)
	got := c.readOutput(app, []string{in, rep}, out, len(want))
	checkWindowResults(t, app, got, want)
	if ends := c.offsetsOf(topology.LateTopic(app)); sumOffsets(ends) != 0 {
		t.Errorf("%s has %d records, want none: no click is later than the bound", topology.LateTopic(app), sumOffsets(ends))
	}
	t.Logf("%d clicks, %d results; a=%v b=%v", len(cs), len(got), taskIDs(a.e.Tasks()), taskIDs(b.e.Tasks()))
}

// TestWindowCountLateData sends clicks 30s and more behind a watermark
// that every downstream task is known to have reached. They go to
// "<app>-late", as read from the repartition topic, with the windows they
// missed, the exact watermark they met, their source coordinates (the
// repartition topic's record) and their origin (the input record); they
// are counted nowhere.
func TestWindowCountLateData(t *testing.T) {
	t.Parallel()
	const (
		in, out = "clicks", "clicks-per-window"
		app     = "wc-late"
	)
	c := newCluster(t)
	c.createTopic(in, windowsParts)
	r := startEngine(t, c, windowCount(t, in, out), app, windowEngine(t.TempDir(), 0))
	down, rep := downstreamTasks(t, r, windowsParts)
	waitOwnsAll(t, r, append(allTasks(0, windowsParts), down...))

	base := alignedBase()
	cs := genClicks(99, 1200, 10, base, 40*time.Second, clickJitter, windowsParts)
	pr := manualProducer(t, c)
	produceWith(t, pr, clickRecords(t, in, cs, "c"))

	// Every downstream task's watermark becomes the minimum over the
	// input partitions of their watermarks, and stays there: nothing
	// newer comes until the closers.
	wm := int64(math.MaxInt64)
	for _, m := range maxTSByPartition(cs) {
		wm = min(wm, m-outOfOrder)
	}
	if n := len(maxTSByPartition(cs)); n != windowsParts {
		t.Fatalf("clicks in %d partitions, want %d", n, windowsParts)
	}
	waitFor(t, outputTimeout, fmt.Sprintf("every downstream watermark at %d", wm), func() bool {
		failIfExited(t, r)
		m := samples(t, r)
		for _, task := range down {
			if v, ok := m[watermarkSeries(task)]; !ok || int64(v) != wm {
				return false
			}
		}
		return true
	})

	// One late click per input partition, by users with clicks in the
	// first window, in that window: it closed (end <= wm) with a count
	// the late clicks must not change.
	firstWin := make(map[string]bool)
	taken := make(map[winKey]bool) // (user, ts) already clicked
	for _, cl := range cs {
		taken[winKey{cl.user, cl.ts}] = true
		if cl.ts < base+windowSize {
			firstWin[cl.user] = true
		}
	}
	users := make([]string, 0, len(firstWin))
	for u := range firstWin {
		users = append(users, u)
	}
	slices.Sort(users)
	var late []click
	for p := range windowsParts {
		u := users[p%len(users)]
		ts := base + 100 + int64(p)*37
		for taken[winKey{u, ts}] {
			ts++
		}
		taken[winKey{u, ts}] = true
		late = append(late, click{user: u, ts: ts, part: int32(p)})
	}
	for _, l := range late {
		if l.ts > wm-30_000 || base+windowSize > wm {
			t.Fatalf("late click at %d: want it 30s behind the watermark %d, in a closed window", l.ts, wm)
		}
	}
	lateRecs := clickRecords(t, in, late, "late")
	produceWith(t, pr, lateRecs)
	lateGot := c.consume(topology.LateTopic(app), len(late))

	final := closers(base + time.Hour.Milliseconds())
	produceWith(t, pr, clickRecords(t, in, final, "close"))
	want := windowOracle(cs, final[0].ts-outOfOrder)
	got := c.readOutput(app, []string{in, rep}, out, len(want))
	checkWindowResults(t, app, got, want)
	c.assertComplete(topology.LateTopic(app), lateGot) // nothing else went late

	// The late records are the repartition topic's records of the late
	// clicks (key = user, timestamp = event time, value stripped).
	type src struct {
		partition int32
		offset    int64
	}
	where := make(map[winKey][]src)
	for _, rec := range c.readCommitted(rep) {
		if _, ok := headerOf(rec, windows.HeaderKey); ok {
			continue
		}
		k := winKey{string(rec.Key), rec.Timestamp.UnixMilli()}
		where[k] = append(where[k], src{rec.Partition, rec.Offset})
	}
	seen := make(map[winKey]bool)
	for _, rec := range lateGot {
		k := winKey{string(rec.Key), rec.Timestamp.UnixMilli()}
		if !slices.ContainsFunc(late, func(l click) bool { return l.user == k.user && l.ts == k.start }) {
			t.Errorf("late record user %q ts %d is not a late click", k.user, k.start)
			continue
		}
		if seen[k] {
			t.Errorf("late click user %q ts %d twice", k.user, k.start)
		}
		seen[k] = true
		srcs := where[k]
		if len(srcs) != 1 {
			t.Errorf("late click user %q ts %d: %d records in %s, want 1", k.user, k.start, len(srcs), rep)
			continue
		}
		i := slices.IndexFunc(late, func(l click) bool { return l.user == k.user && l.ts == k.start })
		input := lateRecs[i] // its partition and offset set by the produce
		start := k.start - k.start%windowSize
		wantH := map[string]string{
			topology.HeaderOriginTopic:     in,
			topology.HeaderOriginPartition: strconv.Itoa(int(input.Partition)),
			topology.HeaderOriginOffset:    strconv.FormatInt(input.Offset, 10),
			topology.HeaderLateOperator:    "count",
			topology.HeaderLateWindows:     fmt.Sprintf("%d-%d", start, start+windowSize),
			topology.HeaderLateWatermark:   strconv.FormatInt(wm, 10),
			topology.HeaderSourceTopic:     rep,
			topology.HeaderSourcePartition: strconv.Itoa(int(srcs[0].partition)),
			topology.HeaderSourceOffset:    strconv.FormatInt(srcs[0].offset, 10),
		}
		for h, v := range wantH {
			if got, ok := headerOf(rec, h); !ok || got != v {
				t.Errorf("late click user %q ts %d: header %s = %q (present %v), want %q", k.user, k.start, h, got, ok, v)
			}
		}
	}
	if len(seen) != len(late) {
		t.Errorf("%d distinct late clicks in %s, want %d", len(seen), topology.LateTopic(app), len(late))
	}
	if n := samples(t, r)[`weir_late_records_total{operator="count"}`]; n != float64(len(late)) {
		t.Errorf("weir_late_records_total = %v, want %d", n, len(late))
	}
}

// TestWindowCountIdlePartition gives clicks to one input partition of 8
// and none to the others, and sends no far-future click. Two applications
// read the same input:
//
//   - "idle" (IdleTimeout 2s): the 7 empty partitions are caught up and go
//     idle, their upstream tasks report idle, and downstream the watermark
//     becomes partition 0's, max - 2s. Exactly the windows ending at or
//     before it close; every downstream task's watermark is that value.
//   - "never" (IdleTimeout 0): the empty partitions hold every downstream
//     watermark at unknown, so nothing closes. It is watched for longer
//     than "idle" needed to close its windows (twice the idle timeout
//     more), and over at least 20 of its checkpoints, so an engine that
//     closed windows on quiet partitions without the timeout would fail.
//     (An engine that took 0 for the 30s default would not: that would
//     need a 30s wait.)
func TestWindowCountIdlePartition(t *testing.T) {
	t.Parallel()
	const (
		in   = "clicks"
		idle = 2 * time.Second
	)
	c := newCluster(t)
	c.createTopic(in, windowsParts)
	on := startEngine(t, c, windowCount(t, in, "out-idle"), "wc-idle", windowEngine(t.TempDir(), idle))
	off := startEngine(t, c, windowCount(t, in, "out-never"), "wc-never", windowEngine(t.TempDir(), 0))
	down, rep := downstreamTasks(t, on, windowsParts)
	_, repOff := downstreamTasks(t, off, windowsParts)
	all := append(allTasks(0, windowsParts), down...)
	waitOwnsAll(t, on, all)
	waitOwnsAll(t, off, all)

	base := alignedBase()
	cs := genClicks(5, 600, 10, base, 45*time.Second, clickJitter, 1) // partition 0 only
	wm := maxTSByPartition(cs)[0] - outOfOrder
	want := windowOracle(cs, wm)
	if len(want) == 0 || len(want) == len(windowOracle(cs, wm+time.Hour.Milliseconds())) {
		t.Fatalf("the oracle should close some windows and leave some open (%d closed)", len(want))
	}
	produceWith(t, manualProducer(t, c), clickRecords(t, in, cs, "c"))
	producedAt := time.Now()

	got := c.consume("out-idle", len(want))
	closedAfter := time.Since(producedAt)
	c.waitCaughtUp("wc-idle", in, rep)
	c.assertComplete("out-idle", got)
	checkWindowResults(t, "wc-idle", got, want)
	waitFor(t, outputTimeout, fmt.Sprintf("every downstream watermark of wc-idle at %d", wm), func() bool {
		m := samples(t, on)
		for _, task := range down {
			if v, ok := m[watermarkSeries(task)]; !ok || int64(v) != wm {
				return false
			}
		}
		return true
	})
	if n := sumOffsets(c.offsetsOf(topology.LateTopic("wc-idle"))); n != 0 {
		t.Errorf("wc-idle: %d late records, want none", n)
	}

	// "never" has read and forwarded everything, and its upstream task 0_0
	// has the same watermark as "idle"'s: only idleness differs.
	c.waitCaughtUp("wc-never", in, repOff)
	waitFor(t, outputTimeout, "wc-never's task 0_0 at the watermark", func() bool {
		v, ok := samples(t, off)[watermarkSeries("0_0")]
		return ok && int64(v) == wm
	})
	until := producedAt.Add(closedAfter + 2*idle)
	cp0 := samples(t, off)[okCheckpoints]
	waitFor(t, closedAfter+2*idle+outputTimeout, "wc-never to run past wc-idle's closing time without closing a window", func() bool {
		failIfExited(t, off)
		if n := sumOffsets(c.offsetsOf("out-never")); n != 0 {
			t.Fatalf("wc-never (IdleTimeout 0) emitted %d results %v after its input: quiet partitions closed windows", n, time.Since(producedAt))
		}
		m := samples(t, off)
		for _, task := range down {
			if v, ok := m[watermarkSeries(task)]; ok {
				t.Fatalf("wc-never: task %s has watermark %v, want unknown: 7 input partitions have no data and never go idle", task, v)
			}
		}
		return time.Now().After(until) && m[okCheckpoints] >= cp0+20
	})
	t.Logf("wc-idle closed %d windows %v after the input was written", len(want), closedAfter.Round(time.Millisecond))
}
