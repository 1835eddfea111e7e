package containers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
)

// startThree starts processors p0, p1 and p2, each on a new state volume,
// and waits until they share the tasks.
func startThree(t *testing.T, s *stack) []*proc {
	t.Helper()
	var ps []*proc
	for i := range 3 {
		name := fmt.Sprintf("p%d", i)
		ps = append(ps, s.startProc(name, uniqueName(t, name)))
	}
	s.waitGroup("three processors started", ps...)
	return ps
}

// checkImage checks what the image promises: a non-root user, and a
// health check (the binary's own 'healthcheck' command) that reports the
// container healthy, and fails with exit status 1 on a dead URL.
func checkImage(t *testing.T, p *proc) {
	t.Helper()
	in := p.inspect()
	if in.Config.User != "65534:65534" {
		t.Errorf("%s runs as user %q, want 65534:65534", p.name, in.Config.User)
	}
	wantTest := []string{"CMD", "/processor", "healthcheck", "--url", "http://127.0.0.1:8080/healthz", "--timeout", "4s"}
	if hc := in.Config.Healthcheck; hc == nil || !slices.Equal(hc.Test, wantTest) {
		t.Errorf("%s health check %+v, want the image's %q", p.name, hc, wantTest)
	}
	var status container.HealthStatus
	waitFor(t, startTimeout, func() string { return fmt.Sprintf("%s to be healthy (is %q)", p.name, status) }, func() bool {
		if h := p.inspect().State.Health; h != nil {
			status = h.Status
		}
		return status == container.Healthy
	})
	code, out, err := p.c.Exec(ctxFor(t, time.Minute), []string{"/processor", "healthcheck", "--url", "http://127.0.0.1:1/healthz"}, tcexec.Multiplexed())
	if err != nil {
		t.Fatalf("docker exec %s processor healthcheck: %v", p.name, err)
	}
	msg, _ := readAllString(out)
	if code != 1 || !strings.Contains(msg, "unhealthy") {
		t.Errorf("healthcheck of a dead URL: exit %d, output %q; want exit 1 saying unhealthy", code, msg)
	}
}

// checkSoFar waits until the group has consumed everything produced and
// checks the output so far against cs, all the clicks the test will
// produce: no result twice, and every result with its final count (a
// window that closed had all its clicks: none is late).
func (s *stack) checkSoFar(phase string, cs []click) {
	t := s.t
	t.Helper()
	s.waitCaughtUp()
	got := s.readAll(outputTopic)
	all := windowOracle(cs, math.MaxInt64)
	want := make(map[winKey]int64)
	for _, r := range got {
		var k winKey
		if res, ok := decodeResult(r.Value); ok {
			k = winKey{res.Key, res.WindowStart}
		}
		if n, ok := all[k]; ok {
			want[k] = n
		}
	}
	before := t.Failed()
	checkWindowResults(t, s.app, got, want)
	if !before && t.Failed() {
		t.Fatalf("%s: the output is wrong (above)", phase)
	}
	t.Logf("%s: %d results so far, none twice, all with their final count", phase, len(got))
}

// TestContainerFaults runs window-count with exactly-once in three
// processor containers and injects one fault of each kind, with input
// flowing around it:
//
//  1. docker stop p0 (SIGTERM): it must exit 0, having handed over.
//  2. docker kill p1 (SIGKILL), right after a batch was produced.
//  3. docker pause p2 past the session timeout, with input produced before
//     and during the pause, then unpause: a zombie whose open transaction
//     must not land.
//  4. docker network disconnect p0, then connect it again.
//
// After each, the group recovers (the broker's group is stable with the
// live members, and their /api/tasks own every task once), and the output
// so far holds no duplicate or wrong result. At the end, the far-future
// clicks close every window and the output equals the oracle.
func TestContainerFaults(t *testing.T) {
	start := time.Now()
	s := newStack(t, "wc-faults")
	ps := startThree(t, s)
	checkImage(t, ps[0])

	cs := genClicks(7, 6000, 40, alignedBase(), 10*time.Minute)
	bs := batches(cs, 6)
	s.produce(records(t, bs[0], "b0"))

	t.Log("fault 1: docker stop p0")
	ps[0].stop()
	s.waitGroup("p0 stopped", ps[1], ps[2])
	s.produce(records(t, bs[1], "b1"))
	ps[0].start()
	s.waitGroup("p0 started again", ps...)
	s.checkSoFar("after docker stop", cs)

	t.Log("fault 2: docker kill p1")
	s.produce(records(t, bs[2], "b2"))
	ps[1].kill()
	s.waitGroup("p1 killed", ps[0], ps[2])
	ps[1].start()
	s.waitGroup("p1 started again", ps...)
	s.checkSoFar("after docker kill", cs)

	t.Log("fault 3: docker pause p2 past the session timeout")
	s.produce(records(t, bs[3], "b3"))
	ps[2].pause()
	paused := time.Now()
	s.waitGroup("p2 paused", ps[0], ps[1])
	s.produce(records(t, bs[4], "b4"))
	s.waitCaughtUp() // the others processed what p2 may have had in flight
	if d := time.Since(paused); d < 2*sessionTimeout {
		time.Sleep(2*sessionTimeout - d) // a zombie well past its session
	}
	ps[2].unpause()
	s.waitGroup("p2 unpaused", ps...)
	s.checkSoFar("after docker pause", cs)
	t.Logf("p2 after the pause: restarted by Docker %d times; weir_transaction_aborts_total rebalance=%v error=%v (since its last start)",
		ps[2].inspect().RestartCount, ps[2].metric(`weir_transaction_aborts_total{cause="rebalance"}`), ps[2].metric(`weir_transaction_aborts_total{cause="error"}`))

	t.Log("fault 4: docker network disconnect p0")
	ps[0].disconnect()
	s.waitGroup("p0 cut off", ps[1], ps[2])
	s.produce(records(t, bs[5], "b5"))
	ps[0].connect()
	s.waitGroup("p0 connected again", ps...)

	final := closers(alignedBase() + 2*time.Hour.Milliseconds())
	s.produce(records(t, final, "close"))
	want := windowOracle(cs, final[0].ts-outOfOrder)
	got := s.readOutput(len(want))
	checkWindowResults(t, s.app, got, want)
	s.checkNothingLate()
	t.Logf("%d clicks, %d results, as the oracle says, in %v", len(cs), len(got), time.Since(start).Round(time.Second))
}

// TestContainerRollingRestart restarts the three processors one at a time
// (docker stop, then docker start of the same container: the state volume
// is kept), with input produced while each is down. Nothing is lost or
// duplicated, and no restarted processor replays whole changelogs: every
// restore it logs starts at an offset recorded in its local state (from >
// 0), and all it replays is a small part of the changelog.
//
// The processors keep two standby replicas, so that each holds local state
// for every stateful task: which tasks the group hands a restarted member
// is the balancer's choice, and without a local copy of a task a member
// rightly restores it from offset 0.
func TestContainerRollingRestart(t *testing.T) {
	start := time.Now()
	s := newStack(t, "wc-rolling", "--standby-replicas", "2")
	ps := startThree(t, s)

	cs := genClicks(11, 24000, 300, alignedBase(), 20*time.Minute)
	bs := batches(cs, 10)
	for i, b := range bs[:7] {
		s.produce(records(t, b, "b"+strconv.Itoa(i)))
	}
	s.waitCaughtUp()
	// Every member's standbys have caught up with the changelog too.
	cl := s.changelogLength()
	for _, p := range ps {
		waitFor(t, readTimeout, func() string { return p.name + "'s standby copies to catch up" }, func() bool {
			v1 := p.metric(`weir_standby_records_total{store="count-store"}`)
			time.Sleep(time.Second)
			v2 := p.metric(`weir_standby_records_total{store="count-store"}`)
			return v1 > 0 && v1 == v2
		})
	}

	var warm int
	for i, p := range ps {
		p.stop()
		others := slices.Delete(slices.Clone(ps), i, i+1)
		s.waitGroup(p.name+" stopped", others...)
		s.produce(records(t, bs[7+i], "b"+strconv.Itoa(7+i)))
		p.start()
		s.waitGroup(p.name+" started again", ps...)

		cl = s.changelogLength()
		rs := p.restoresSinceStart()
		var replayed int64
		for _, r := range rs {
			replayed += r.records
			if r.store != countStore {
				t.Errorf("%s restored store %q, want only %q", p.name, r.store, countStore)
			}
			if r.from == 0 || r.records > r.end-r.from {
				t.Errorf("%s restored task %s from offset %d to %d (%d records): want a tail from its local checkpoint (offset > 0)", p.name, r.task, r.from, r.end, r.records)
			}
		}
		m := p.metric(`weir_restore_records_total{store="count-store"}`)
		if int64(m) != replayed {
			t.Errorf("%s: weir_restore_records_total = %v, its log says %d records", p.name, m, replayed)
		}
		if replayed*10 > cl {
			t.Errorf("%s replayed %d changelog records after its restart, want under a tenth of the changelog's %d", p.name, replayed, cl)
		}
		warm += len(rs)
		t.Logf("%s restarted: %d stateful tasks restored, %d records replayed; the changelog holds %d", p.name, len(rs), replayed, cl)
	}
	if warm == 0 {
		t.Errorf("no restarted processor got a stateful task: the restore path was not exercised")
	}

	final := closers(alignedBase() + 2*time.Hour.Milliseconds())
	s.produce(records(t, final, "close"))
	want := windowOracle(cs, final[0].ts-outOfOrder)
	got := s.readOutput(len(want))
	checkWindowResults(t, s.app, got, want)
	s.checkNothingLate()
	t.Logf("%d clicks, %d results, as the oracle says, in %v", len(cs), len(got), time.Since(start).Round(time.Second))
}

// TestContainerEmptyVolumeRestore runs one processor over half the input
// and stops it, with windows still open; a processor container on an
// empty state volume takes over and must rebuild that state from the
// changelogs: it restores every stateful task from offset 0, its
// weir_restore_records_total is positive, and the final output (windows
// that span both halves included) equals the oracle.
func TestContainerEmptyVolumeRestore(t *testing.T) {
	start := time.Now()
	s := newStack(t, "wc-cold")
	first := s.startProc("first", uniqueName(t, "first"))
	s.waitGroup("one processor", first)

	cs := genClicks(23, 8000, 100, alignedBase(), 10*time.Minute)
	bs := batches(cs, 2)
	s.produce(records(t, bs[0], "b0"))
	s.waitCaughtUp()
	first.stop()
	cl := s.changelogLength()
	if cl == 0 {
		t.Fatal("the changelog is empty after the first half")
	}

	fresh := s.startProc("fresh", uniqueName(t, "fresh"))
	s.waitGroup("a processor on an empty volume", fresh)
	rs := fresh.restoresSinceStart()
	var replayed int64
	tasks := make(map[string]bool)
	for _, r := range rs {
		replayed += r.records
		tasks[r.task] = true
		if r.from != 0 {
			t.Errorf("fresh restored task %s from offset %d, want 0: its volume was empty", r.task, r.from)
		}
	}
	if len(tasks) != partitions {
		t.Errorf("fresh restored %d stateful tasks, want all %d", len(tasks), partitions)
	}
	if m := fresh.metric(`weir_restore_records_total{store="count-store"}`); m <= 0 || int64(m) != replayed {
		t.Errorf("weir_restore_records_total = %v, want > 0 and the %d records its log reports", m, replayed)
	}
	t.Logf("fresh restored %d records of a %d-offset changelog", replayed, cl)

	s.produce(records(t, bs[1], "b1"))
	final := closers(alignedBase() + 2*time.Hour.Milliseconds())
	s.produce(records(t, final, "close"))
	want := windowOracle(cs, final[0].ts-outOfOrder)
	got := s.readOutput(len(want))
	checkWindowResults(t, s.app, got, want)
	s.checkNothingLate()
	t.Logf("%d clicks, %d results, as the oracle says, in %v", len(cs), len(got), time.Since(start).Round(time.Second))
}

// TestContainerChaos (WEIR_CONTAINER_CHAOS=1) injects random faults into
// three processors, a batch of input before each, checking the output so
// far after each recovery and against the oracle at the end.
// WEIR_CONTAINER_CHAOS_ROUNDS sets the number of faults (default 20),
// WEIR_CONTAINER_CHAOS_SEED the seed (default: the time; logged).
func TestContainerChaos(t *testing.T) {
	needDocker(t)
	if os.Getenv("WEIR_CONTAINER_CHAOS") == "" {
		t.Skip("the long chaos run: set WEIR_CONTAINER_CHAOS=1 (and -timeout 30m)")
	}
	rounds := envInt(t, "WEIR_CONTAINER_CHAOS_ROUNDS", 20)
	seed := uint64(envInt(t, "WEIR_CONTAINER_CHAOS_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("chaos: %d rounds, WEIR_CONTAINER_CHAOS_SEED=%d", rounds, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	s := newStack(t, "wc-chaos")
	ps := startThree(t, s)
	cs := genClicks(seed, 1000*(rounds+1), 60, alignedBase(), time.Duration(rounds+1)*time.Minute)
	bs := batches(cs, rounds+1)
	for i := range rounds {
		s.produce(records(t, bs[i], "b"+strconv.Itoa(i)))
		idx := rng.IntN(len(ps))
		p := ps[idx]
		others := slices.Delete(slices.Clone(ps), idx, idx+1)
		switch kind := rng.IntN(4); kind {
		case 0:
			t.Logf("round %d: docker stop %s", i, p.name)
			p.stop()
			s.waitGroup("stopped", others...)
			p.start()
		case 1:
			t.Logf("round %d: docker kill %s", i, p.name)
			p.kill()
			s.waitGroup("killed", others...)
			p.start()
		case 2:
			d := sessionTimeout + time.Duration(rng.Int64N(int64(3*sessionTimeout)))
			t.Logf("round %d: docker pause %s for %v", i, p.name, d)
			p.pause()
			time.Sleep(d)
			p.unpause()
		case 3:
			d := time.Duration(rng.Int64N(int64(3 * sessionTimeout)))
			t.Logf("round %d: docker network disconnect %s for %v", i, p.name, d)
			p.disconnect()
			time.Sleep(d)
			p.connect()
		}
		s.waitGroup(fmt.Sprintf("round %d", i), ps...)
		s.checkSoFar(fmt.Sprintf("round %d", i), cs)
	}
	s.produce(records(t, bs[rounds], "b"+strconv.Itoa(rounds)))
	final := closers(alignedBase() + 2*time.Hour.Milliseconds() + int64(rounds)*time.Minute.Milliseconds())
	s.produce(records(t, final, "close"))
	want := windowOracle(cs, final[0].ts-outOfOrder)
	got := s.readOutput(len(want))
	checkWindowResults(t, s.app, got, want)
	s.checkNothingLate()
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number", name, v)
	}
	return n
}
