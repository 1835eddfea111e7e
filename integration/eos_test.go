package integration

// Exactly-once proof tests (../shared/DESIGN.md §3, §7): real processes,
// SIGKILL, SIGSTOP, a crash between commit and apply, broker errors, and
// poison pills, each checked by an independent read_committed reader
// against an oracle computed from the input.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/kafkaio"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
)

// The crash test's size: it takes about 80s on two cores. With 400,000
// records the first 20 kills come while the group consumes the input (each
// kill stalls the group for a rebalance); 3 more come once it is consumed.
// WEIR_CRASH_KILLS raises the number of kills and WEIR_CRASH_RECORDS the
// input for a longer run.
const (
	eosCrashRecords    = 400_000
	eosCrashQuietKills = 3
	eosCrashUsers      = 50
	eosCrashSpan       = 30 * time.Minute // of event time: 180 windows of 10s
	eosCrashKills      = 20
	eosCrashProcs      = 3
)

// eosRepartition returns the repartition topic of window-count as
// application app.
func eosRepartition(t *testing.T, app, in, out string) string {
	t.Helper()
	plan, err := windowCount(t, in, out).Build(app)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range plan.Subtopologies {
		for _, s := range st.Sources {
			if s.Internal {
				return s.Topic
			}
		}
	}
	t.Fatal("window-count has no repartition topic")
	return ""
}

// TestExactlyOnceCrash runs window-count as three processes against a
// broker process, over input written beforehand (400,000 clicks of 50
// users over 8 partitions, event times trailing a monotone clock by less
// than 1.5s, so no click is late), and SIGKILLs a random one of them at
// random moments, restarting it on the same state directory: 20 times
// while the input is consumed, 3 more times after. Then a far-future click
// on every partition closes every window.
// The output, read read_committed by franz-go and by kcat, holds exactly
// one result per (user, window) with the oracle's count and a result id
// of its own: nothing duplicated, nothing missing.
func TestExactlyOnceCrash(t *testing.T) {
	t.Parallel()
	const (
		in, out = "clicks", "clicks-per-window"
		app     = "eos-crash"
		seed    = 20240917
	)
	kills := eosCrashKills
	if s := os.Getenv("WEIR_CRASH_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("WEIR_CRASH_KILLS=%q: want a positive number", s)
		}
		kills = max(kills, n)
	}
	start := time.Now()
	bin := processorBinary(t)
	broker := startProc(t, "dev-broker", "dev-broker", "--listen", "127.0.0.1:0")
	c := connect(t, broker.match(t, brokerAddrRE, false))
	c.createTopic(in, windowsParts)
	rep := eosRepartition(t, app, in, out)

	base := alignedBase()
	records := eosCrashRecords
	if s := os.Getenv("WEIR_CRASH_RECORDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("WEIR_CRASH_RECORDS=%q: want a positive number", s)
		}
		records = n
	}
	cs := genClicks(seed, records, eosCrashUsers, base, eosCrashSpan, clickJitter, windowsParts)
	pr := manualProducer(t, c)
	for chunk := range slices.Chunk(clickRecords(t, in, cs, "c"), 20_000) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := pr.ProduceSync(ctx, chunk...).FirstErr()
		cancel()
		if err != nil {
			t.Fatalf("produce the input: %v", err)
		}
	}
	t.Logf("input: %d clicks written in %v", len(cs), time.Since(start).Round(time.Millisecond))

	// Idleness is not the subject: every partition has clicks from the
	// start, and 0 keeps a quiet partition from ever leaving the minimum.
	dirs := make([]string, eosCrashProcs)
	lives := make([]*eosLife, eosCrashProcs)
	gen := make([]int, eosCrashProcs)
	run := func(i int) {
		lives[i] = eosStart(t, fmt.Sprintf("run-%d.%d", i, gen[i]), bin, nil, "run", "--guarantee", "exactly_once",
			"--brokers", c.addr, "--app-id", app, "--topology", "window-count", "--input", in, "--output", out,
			"--state-dir", dirs[i], "--http", "127.0.0.1:0", "--session-timeout", "3s", "--commit-interval", "100ms",
			"--idle-timeout", "0")
		gen[i]++
	}
	alive := func() {
		t.Helper()
		for _, l := range lives {
			if l.exited() {
				t.Fatalf("%s exited without being killed: %v", l.name, l.err)
			}
		}
	}
	for i := range dirs {
		dirs[i] = t.TempDir()
		run(i)
	}

	// The driver: a random process at a random moment, 1-3s apart, but
	// never while the group is rebalancing. kfake (the dev broker) gives a
	// member no session timer when the answer to its JoinGroup cannot be
	// delivered (its process is gone): such a member stays in the group
	// until a rebalance has waited out the full rebalance timeout (60s,
	// franz-go's default), and every restart during that wait starts
	// another. Kafka expires it after the session timeout. So the driver
	// kills only when the group is Stable with exactly the live processes
	// as members: the victim is then a settled member whose session the
	// broker times out. (Everything else stays random: mid-transaction,
	// mid-restore, mid-rebalance on the client side.)
	// WEIR_CRASH_SEED picks another kill schedule (the input stays).
	driverSeed := uint64(7)
	if s := os.Getenv("WEIR_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("WEIR_CRASH_SEED=%q: want a number", s)
		}
		driverSeed = n
	}
	rng := rand.New(rand.NewPCG(seed, driverSeed))
	var waited time.Duration
	midInput := 0 // kills before the group had committed all the input
	killOne := func() {
		t.Helper()
		time.Sleep(time.Second + time.Duration(rng.Int64N(int64(2*time.Second))))
		settle := time.Now()
		ids := make([]string, len(lives))
		for i, l := range lives {
			ids[i] = "weir@" + l.httpAddr(t) // engine: the client id is "weir@" and the HTTP address
		}
		waitFor(t, 2*time.Minute, "the group to be stable with the live processes", func() bool {
			alive()
			return eosStableWith(c, app, ids)
		})
		waited += time.Since(settle)
		if n, ok := eosCommittedSum(c, app, in); ok && n < int64(len(cs)) {
			midInput++
		}
		i := rng.IntN(eosCrashProcs)
		lives[i].kill(t)
		if sig, ok := lives[i].killedBy(); !ok || sig.String() != "killed" {
			t.Fatalf("%s: %v, want killed by SIGKILL", lives[i].name, lives[i].cmd.ProcessState)
		}
		run(i)
	}
	for range kills {
		killOne()
	}
	// A few more once the input is consumed and before the closing records
	// come: restarted tasks then have quiet input (their watermarks come
	// from checkpoints and from what upstream tasks announced).
	waitFor(t, 2*time.Minute, "the group to commit all the input", func() bool {
		alive()
		n, ok := eosCommittedSum(c, app, in)
		return ok && n == int64(len(cs))
	})
	for range eosCrashQuietKills {
		killOne()
	}
	killedAt := time.Now()
	kills += eosCrashQuietKills
	t.Logf("%d kills done %v after the start (%v of it waiting for the group to settle); %d of them before the input was consumed and committed",
		kills, killedAt.Sub(start).Round(time.Millisecond), waited.Round(time.Millisecond), midInput)

	final := closers(base + 2*time.Hour.Milliseconds())
	produceWith(t, pr, clickRecords(t, in, final, "close"))
	want := windowOracle(cs, final[0].ts-outOfOrder)
	if len(want) < 100*eosCrashUsers {
		t.Fatalf("the oracle has %d windows: the input should span many windows per user", len(want))
	}
	eosWaitOutput(t, c, app, []string{in, rep}, out, len(want), 2*time.Minute, alive, func() string {
		addrs := make([]string, len(lives))
		for i, l := range lives {
			addrs[i] = l.httpAddr(t)
		}
		return eosMetricsDiag(addrs...) + eosControlsDiag(c, rep)
	})
	t.Logf("output complete %v after the last kill", time.Since(killedAt).Round(time.Millisecond))

	got := eosReadCommitted(t, c, out, outputTimeout)
	f := eosCheckWindows(t, "franz-go", app, eosResultsOf(got), want)
	// The repartition topic holds each click exactly once (the upstream
	// stage's exactly-once), so a wrong count is pinned to one stage.
	eosCheckRepartition(t, eosReadCommitted(t, c, rep, outputTimeout), append(slices.Clone(cs), final...))
	if late := eosReadCommitted(t, c, topology.LateTopic(app), outputTimeout); len(late) > 0 {
		t.Errorf("%s has %d records, want none: no click is later than the bound", topology.LateTopic(app), len(late))
	}
	if dead := eosReadCommitted(t, c, engine.DLQTopic(app), outputTimeout); len(dead) > 0 {
		t.Errorf("%s has %d records, want none: every click is well formed", engine.DLQTopic(app), len(dead))
	}
	t.Logf("kill schedule seed %d, kills %d, input records %d (+%d closers), oracle windows %d; franz-go: %v", driverSeed, kills, len(cs), len(final), len(want), f)

	if kcat, err := exec.LookPath("kcat"); err != nil {
		t.Logf("kcat not installed, so the librdkafka reader is skipped (apt-get install kcat): %v", err)
	} else {
		kf := eosCheckWindows(t, "kcat", app, eosKcatWindows(t, kcat, c.addr, out), want)
		t.Logf("kcat: %v", kf)
	}

	for _, l := range lives {
		l.terminate(t)
	}
	broker.terminate(t)
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// eosKeyCountArgs are the arguments of a key-count process.
func eosKeyCountArgs(addr, app, in, out, dir string) []string {
	return []string{"run", "--brokers", addr, "--app-id", app, "--topology", "key-count",
		"--input", in, "--output", out, "--state-dir", dir, "--http", "127.0.0.1:0",
		"--session-timeout", "3s", "--commit-interval", "100ms"}
}

// TestExactlyOnceCrashAfterCommit kills key-count between a committed
// transaction and the apply of its state to Badger (the weirtesthooks
// build SIGKILLs itself there after its 20th commit) while records
// stream in, and restarts it on the same state directory. Badger then
// lags the committed changelog: the restart must replay the changelog
// tail past its checkpoint (a restore that starts at a recorded offset and
// replays records), and each key's running counts must still be exactly
// 1..N across both lives: a restart that missed the tail would count the
// last checkpoint's records again from the older state.
func TestExactlyOnceCrashAfterCommit(t *testing.T) {
	t.Parallel()
	const (
		in, out = "eac-in", "eac-out"
		app     = "eos-after-commit"
		keys    = 40
		crashAt = 20 // committed transactions; the first few are empty while the group forms
	)
	start := time.Now()
	hook, plain := eosHookBinary(t), processorBinary(t)
	broker := startProc(t, "dev-broker", "dev-broker", "--listen", "127.0.0.1:0")
	c := connect(t, broker.match(t, brokerAddrRE, false))
	c.createTopic(in, 8)
	dir := t.TempDir()

	// 25 records every 10ms over 40 keys and 8 partitions: every
	// checkpoint (100ms) once the group has formed changes state.
	rng := rand.New(rand.NewPCG(23, 29))
	perKey := make(map[string]int64)
	stream := eosStartStream(t, c.prod, 10*time.Millisecond, func() []*kgo.Record {
		return keyCountInput(rng, in, 25, keys, perKey)
	})

	first := eosStart(t, "run-1 (crashes after commit "+strconv.Itoa(crashAt)+")", hook,
		[]string{"WEIR_TEST_CRASH_AFTER_COMMIT=" + strconv.Itoa(crashAt)}, eosKeyCountArgs(c.addr, app, in, out, dir)...)
	select {
	case <-first.done:
	case <-time.After(groupTimeout):
		t.Fatalf("run-1 did not crash within %v of its start", groupTimeout)
	}
	if sig, ok := first.killedBy(); !ok || sig != syscall.SIGKILL {
		t.Fatalf("run-1 ended with %v, want SIGKILL from the hook", first.cmd.ProcessState)
	}
	if !strings.Contains(first.out.String(), `msg="partitions assigned" app=`+app+` partitions="map[`) {
		t.Fatalf("run-1 crashed before it was assigned partitions: raise crashAt")
	}

	second := eosStart(t, "run-2", plain, nil, eosKeyCountArgs(c.addr, app, in, out, dir)...)
	alive := func() {
		if second.exited() {
			t.Fatalf("run-2 exited: %v", second.err)
		}
	}
	addr := second.httpAddr(t)
	waitFor(t, groupTimeout, "run-2 to own all 8 tasks", func() bool {
		alive()
		return slices.Equal(tasksOf(addr), allTasks(0, 8))
	})
	// Some more input for run-2 alone, then the stream ends.
	more := stream.batches.Load() + 50
	waitFor(t, outputTimeout, "50 more input batches", func() bool { return stream.batches.Load() >= more })
	stream.stop(t)
	eosWaitDrained(t, c, app, outputTimeout, alive, in)

	got := eosReadCommitted(t, c, out, outputTimeout)
	checkOneToN(t, "across the crash", countSequences(t, got), perKey)

	// The tail replay: a task restored from its checkpoint's changelog
	// offset (from > 0: local state was kept) and replayed records past
	// it, which only a crash between commit and apply leaves behind.
	var tail, whole int
	for _, r := range eosRestores(second.out.String()) {
		switch {
		case r.from > 0 && r.replayed > 0:
			tail++
		case r.from == 0 && r.replayed > 0:
			whole++
		}
	}
	m, err := eosScrape(addr)
	if err != nil {
		t.Fatalf("run-2 /metrics: %v", err)
	}
	restored := m[`weir_restore_records_total{store="count-store"}`]
	if tail == 0 {
		t.Errorf("run-2 replayed no changelog tail past a checkpoint (restores: %+v; %s = %v): the state of run-1's last commit was not restored",
			eosRestores(second.out.String()), `weir_restore_records_total{store="count-store"}`, restored)
	}
	if restored <= 0 {
		t.Errorf("run-2: weir_restore_records_total{store=\"count-store\"} = %v, want > 0", restored)
	}
	second.terminate(t)
	broker.terminate(t)
	t.Logf("input records %d, output records %d; run-2 replayed %v changelog records (%d tasks from a checkpoint, %d from the start); %v",
		total(perKey), len(got), restored, tail, whole, time.Since(start).Round(time.Millisecond))
}

// TestExactlyOnceZombie freezes one of two key-count processes (SIGSTOP)
// while it has a transaction open, past its session timeout, until the
// other owns all its tasks and has gone on counting from the committed
// offsets. Thawed (SIGCONT), the zombie still believes it owns its tasks
// and tries to commit: the broker must fence it (its offsets carry a dead
// generation), so its transaction aborts. The output stays exactly each
// key's 1..N.
func TestExactlyOnceZombie(t *testing.T) {
	t.Parallel()
	const (
		in, out = "ez-in", "ez-out"
		app     = "eos-zombie"
		keys    = 40
		frozen  = 8 * time.Second // the session timeout is 3s
	)
	start := time.Now()
	bin := processorBinary(t)
	broker := startProc(t, "dev-broker", "dev-broker", "--listen", "127.0.0.1:0")
	c := connect(t, broker.match(t, brokerAddrRE, false))
	c.createTopic(in, 8)
	dirA, dirB := t.TempDir(), t.TempDir()
	a := eosStart(t, "run-a (the zombie)", bin, nil, eosKeyCountArgs(c.addr, app, in, out, dirA)...)
	b := eosStart(t, "run-b", bin, nil, eosKeyCountArgs(c.addr, app, in, out, dirB)...)
	aHTTP, bHTTP := a.httpAddr(t), b.httpAddr(t)
	want8 := allTasks(0, 8)
	waitFor(t, groupTimeout, "a and b splitting the 8 tasks", func() bool {
		if a.exited() || b.exited() {
			t.Fatalf("a process exited: a %v, b %v", a.err, b.err)
		}
		ta, tb := tasksOf(aHTTP), tasksOf(bHTTP)
		return len(ta) > 0 && len(tb) > 0 && partitionOf(want8, ta, tb)
	})
	aTasks := tasksOf(aHTTP)

	rng := rand.New(rand.NewPCG(31, 37))
	perKey := make(map[string]int64)
	stream := eosStartStream(t, c.prod, 10*time.Millisecond, func() []*kgo.Record {
		return keyCountInput(rng, in, 25, keys, perKey)
	})
	waitFor(t, outputTimeout, "a to have counted something", func() bool {
		m, err := eosScrape(aHTTP)
		return err == nil && eosSum(m, "weir_records_in_total") > 0
	})

	// Freeze a with a transaction open (it spends most of its time in
	// one while records flow; if the freeze hits the gap between two,
	// thaw and try again a moment later).
	txnID := eosTxnID(t, app, dirA)
	var frozenAt time.Time
	var txnState string
	for try := 0; ; try++ {
		a.signal(t, syscall.SIGSTOP)
		frozenAt = time.Now()
		var ongoing bool
		if ongoing, txnState = eosOngoing(c, txnID); ongoing {
			break
		}
		if try == 50 {
			t.Fatalf("a's transaction %s was never open when frozen: %s", txnID, txnState)
		}
		a.signal(t, syscall.SIGCONT)
		time.Sleep(time.Duration(rng.Int64N(int64(30 * time.Millisecond))))
	}
	t.Logf("a frozen with its transaction %s open (%s); it owned %v", txnID, txnState, aTasks)
	waitFor(t, groupTimeout, "b to own all 8 tasks while a is frozen", func() bool {
		if b.exited() {
			t.Fatalf("b exited: %v", b.err)
		}
		return slices.Equal(tasksOf(bHTTP), want8) && time.Since(frozenAt) >= frozen
	})
	bCommitted, _ := eosScrape(bHTTP)
	a.signal(t, syscall.SIGCONT)
	thawedAfter := time.Since(frozenAt)

	// The zombie's late transaction ends in an abort: either the session
	// aborts it (fenced by generation: weir_transaction_aborts_total
	// grows and it rejoins), or, had the broker already aborted it on
	// its transaction timeout, the producer is fenced and the process
	// stops with an error (a supervisor would restart it).
	var outcome string
	deadline := time.Now().Add(groupTimeout)
	for {
		if a.exited() {
			outcome = fmt.Sprintf("exited (%v)", a.err)
			break
		}
		if m, err := eosScrape(aHTTP); err == nil {
			if n := eosSum(m, "weir_transaction_aborts_total"); n > 0 {
				outcome = fmt.Sprintf("survived, weir_transaction_aborts_total = %v", n)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the zombie's transaction did not end within %v of its thaw: no abort counted, still running%s",
				groupTimeout, eosEndDeadlock(a.quitDump()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a.exited() {
		if a.err == nil {
			t.Errorf("the zombie exited 0 after its thaw; want an abort, or an error if its producer was fenced")
		}
		if !strings.Contains(strings.ToLower(a.out.String()), "fenc") && !strings.Contains(a.out.String(), "epoch") {
			t.Errorf("the zombie exited (%v) without saying it was fenced", a.err)
		}
		a = eosStart(t, "run-a (restarted)", bin, nil, eosKeyCountArgs(c.addr, app, in, out, dirA)...)
		aHTTP = a.httpAddr(t)
	}
	t.Logf("a thawed after %v: %s", thawedAfter.Round(time.Millisecond), outcome)
	waitFor(t, groupTimeout, "a and b splitting the 8 tasks again", func() bool {
		if a.exited() || b.exited() {
			t.Fatalf("a process exited: a %v, b %v", a.err, b.err)
		}
		ta, tb := tasksOf(aHTTP), tasksOf(bHTTP)
		return len(ta) > 0 && len(tb) > 0 && partitionOf(want8, ta, tb)
	})
	more := stream.batches.Load() + 50
	waitFor(t, outputTimeout, "50 more input batches", func() bool { return stream.batches.Load() >= more })
	stream.stop(t)
	alive := func() {
		if a.exited() || b.exited() {
			t.Fatalf("a process exited: a %v, b %v", a.err, b.err)
		}
	}
	eosWaitDrained(t, c, app, outputTimeout, alive, in)
	got := eosReadCommitted(t, c, out, outputTimeout)
	checkOneToN(t, "with a zombie", countSequences(t, got), perKey)
	a.terminate(t)
	b.terminate(t)
	broker.terminate(t)
	t.Logf("input records %d, output records %d; b had %v ok checkpoints when a thawed; %v",
		total(perKey), len(got), bCommitted[okCheckpoints], time.Since(start).Round(time.Millisecond))
}

// TestExactlyOnceBrokerFaults runs key-count on two engines while the
// broker fails a seeded random fraction of their requests with errors a
// real broker returns: produce (NOT_LEADER_FOR_PARTITION,
// REQUEST_TIMED_OUT: retried by the client), EndTxn
// (COORDINATOR_NOT_AVAILABLE, CONCURRENT_TRANSACTIONS: retried),
// TxnOffsetCommit (COORDINATOR_LOAD_IN_PROGRESS: the transaction aborts
// and the records are processed again), heartbeat (REBALANCE_IN_PROGRESS:
// the member rejoins, and an open transaction aborts). Then the faults
// stop and the input ends: each key's output is exactly 1..N.
func TestExactlyOnceBrokerFaults(t *testing.T) {
	t.Parallel()
	const (
		in, out = "ef-in", "ef-out"
		app     = "eos-faults"
		keys    = 40
	)
	start := time.Now()
	log := testLogger(t)
	b, err := kafkaio.StartDevBroker(kafkaio.DevBrokerConfig{Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatalf("start dev broker: %v", err)
	}
	t.Cleanup(b.Close)
	c := connect(t, b.Addr())
	c.log = log
	c.createTopic(in, 8)

	transactional := func(req kmsg.Request) bool { return req.(*kmsg.ProduceRequest).TransactionID != nil }
	ofApp := func(req kmsg.Request) bool { return req.(*kmsg.HeartbeatRequest).Group == app }
	faults := eosInstallFaults(b.Cluster(), 41,
		eosFault{key: kmsg.Produce, rate: 0.05, errs: []*kerr.Error{kerr.NotLeaderForPartition, kerr.RequestTimedOut}, only: transactional},
		eosFault{key: kmsg.EndTxn, rate: 0.15, errs: []*kerr.Error{kerr.CoordinatorNotAvailable, kerr.ConcurrentTransactions}},
		eosFault{key: kmsg.TxnOffsetCommit, rate: 0.1, errs: []*kerr.Error{kerr.CoordinatorLoadInProgress}},
		eosFault{key: kmsg.Heartbeat, rate: 0.1, errs: []*kerr.Error{kerr.RebalanceInProgress}, only: ofApp},
	)

	// An engine whose Run returns an error is started again on the same
	// state directory, as a supervisor (systemd, Kubernetes) restarts the
	// process in production.
	supervise := func(name string) *eosSupervisor {
		dir := t.TempDir()
		return eosSupervise(t, name, func() (*engine.Engine, error) {
			cfg := engine.DefaultConfig()
			cfg.Brokers = []string{c.addr}
			cfg.AppID = app
			cfg.StateDir = dir
			// Not 3s as elsewhere: kfake expires a member whose JoinGroup
			// waits for the others longer than its session timeout, and
			// never answers that JoinGroup (group.updateHeartbeat removes
			// the member; Kafka gives a member in the join phase its
			// rebalance timeout instead). Injected EndTxn errors keep a
			// member from rejoining for a few seconds; the orphaned join
			// then held a graceful stop for the 60s request timeout.
			cfg.SessionTimeout = 10 * time.Second
			cfg.Logger = log.With("engine", name)
			return engine.New(builtin.KeyCount(in, out), cfg)
		})
	}
	x, y := supervise("x"), supervise("y")
	waitFor(t, groupTimeout, "x and y splitting the 8 tasks", func() bool {
		x.failIfDone(t)
		y.failIfDone(t)
		ex, ey := x.engine(), y.engine()
		if ex == nil || ey == nil {
			return false
		}
		tx, ty := taskIDs(ex.Tasks()), taskIDs(ey.Tasks())
		return len(tx) > 0 && len(ty) > 0 && partitionOf(allTasks(0, 8), tx, ty)
	})

	rng := rand.New(rand.NewPCG(43, 47))
	perKey := make(map[string]int64)
	stream := eosStartStream(t, c.prod, 10*time.Millisecond, func() []*kgo.Record {
		return keyCountInput(rng, in, 20, keys, perKey)
	})
	faults.on.Store(true)
	// Faults for 600 input batches (about 8s), then none for 100 more.
	waitFor(t, time.Minute, "600 input batches under faults", func() bool { return stream.batches.Load() >= 600 })
	faults.on.Store(false)
	waitFor(t, time.Minute, "100 more input batches", func() bool { return stream.batches.Load() >= 700 })
	stream.stop(t)
	alive := func() {
		x.failIfDone(t)
		y.failIfDone(t)
	}
	if ok, left := eosWaitDrainedOK(c, app, time.Minute, alive, in); !ok {
		t.Fatalf("group %s did not consume and commit all of %s within %v: %s; group: %s%s", app, in, time.Minute, left, eosGroupState(c, app), eosEndDeadlock(eosStacks()))
	}
	got := eosReadCommitted(t, c, out, outputTimeout)
	checkOneToN(t, "under broker faults", countSequences(t, got), perKey)

	var aborts []string
	for _, s := range []*eosSupervisor{x, y} {
		if addr := s.engine().HTTPAddr(); addr != "" {
			if m, err := eosScrape(addr); err == nil {
				aborts = append(aborts, fmt.Sprintf("%s: %v (last life)", s.name, eosSum(m, "weir_transaction_aborts_total")))
			}
		}
	}
	x.stop(t)
	y.stop(t)
	hits := faults.counts()
	if len(hits) == 0 {
		t.Errorf("no fault was injected")
	}
	t.Logf("input records %d, output records %d; injected %v; aborted transactions %v; restarts: x %d %q, y %d %q; %v",
		total(perKey), len(got), hits, aborts, x.restarts.Load(), x.errs, y.restarts.Load(), y.errs, time.Since(start).Round(time.Millisecond))
}

// TestExactlyOnceDLQ mixes poison pills among window-count's clicks on
// several partitions: not JSON, no "ts", "ts" a string, no "user". Two
// engines share the work and one leaves half-way (its open transaction
// aborts and the other replays from the committed offsets). Each bad
// record is in "<app>-dlq" exactly once, read_committed, with its
// original key and value and the four headers with their exact values;
// the good clicks' window results are exact.
func TestExactlyOnceDLQ(t *testing.T) {
	t.Parallel()
	const (
		in, out = "clicks", "clicks-per-window"
		app     = "eos-dlq"
	)
	start := time.Now()
	c := newCluster(t)
	c.createTopic(in, windowsParts)
	x := startEngine(t, c, windowCount(t, in, out), app, windowEngine(t.TempDir(), 0))
	y := startEngine(t, c, windowCount(t, in, out), app, windowEngine(t.TempDir(), 0))
	rep := eosRepartition(t, app, in, out)

	base := alignedBase()
	cs := genClicks(53, 6000, 20, base, 3*time.Minute, clickJitter, windowsParts)
	good := clickRecords(t, in, cs, "c")
	decodeErr := func(err error) string {
		return (&topology.SourceError{Operator: "source", Err: fmt.Errorf("value: %w", &serde.DecodeError{Serde: "window-count event", Err: err})}).Error()
	}
	var notJSON map[string]json.RawMessage
	notJSONErr := json.Unmarshal([]byte("not json"), &notJSON)
	kinds := []struct {
		value []byte
		err   string
	}{
		{[]byte("not json"), decodeErr(notJSONErr)},
		{[]byte(`{"user":"u01","page":"/a"}`), decodeErr(errors.New(`no "ts" field`))},
		{[]byte(`{"user":"u01","page":"/a","ts":"soon"}`), decodeErr(errors.New(`"ts" is "soon", want epoch milliseconds`))},
		{[]byte(`{"page":"/a","ts":1700000000123}`), decodeErr(errors.New(`no "user" field`))},
	}
	type bad struct {
		rec *kgo.Record
		err string
	}
	var bads []*bad
	rng := rand.New(rand.NewPCG(59, 61))
	recs := make([]*kgo.Record, 0, len(good)+64)
	for i, r := range good {
		recs = append(recs, r)
		if i%100 == 50 { // 60 poison pills, every kind on several partitions
			k := kinds[(i/100)%len(kinds)]
			b := &bad{rec: &kgo.Record{Topic: in, Partition: rng.Int32N(windowsParts), Key: fmt.Appendf(nil, "bad-%d", i), Value: k.value}, err: k.err}
			bads = append(bads, b)
			recs = append(recs, b.rec)
		}
	}
	pr := manualProducer(t, c)
	half := len(recs) / 2
	produceWith(t, pr, recs[:half])
	waitFor(t, outputTimeout, "the first half's dead letters", func() bool {
		failIfExited(t, x, y)
		return sumOffsets(c.offsetsOf(engine.DLQTopic(app))) > 0
	})
	y.stop(t) // leaves with a transaction open: it aborts, x replays
	produceWith(t, pr, recs[half:])
	final := closers(base + time.Hour.Milliseconds())
	produceWith(t, pr, clickRecords(t, in, final, "close"))
	want := windowOracle(cs, final[0].ts-outOfOrder)
	eosWaitOutput(t, c, app, []string{in, rep}, out, len(want), outputTimeout, func() { failIfExited(t, x) }, nil)

	f := eosCheckWindows(t, "franz-go", app, eosResultsOf(eosReadCommitted(t, c, out, outputTimeout)), want)
	dead := eosReadCommitted(t, c, engine.DLQTopic(app), outputTimeout)
	type origin struct {
		partition int32
		offset    int64
	}
	byOrigin := make(map[origin]*bad)
	for _, b := range bads {
		byOrigin[origin{b.rec.Partition, b.rec.Offset}] = b
	}
	parts := make(map[int32]bool)
	var dups int
	seen := make(map[origin]bool)
	for _, d := range dead {
		h := d.Headers
		if len(h) != 4 {
			t.Errorf("dlq %d: headers %s, want the four weir headers", d.Offset, fmtHeaders(h))
			continue
		}
		p, perr := strconv.ParseInt(string(h[2].Value), 10, 32)
		o, oerr := strconv.ParseInt(string(h[3].Value), 10, 64)
		if perr != nil || oerr != nil {
			t.Errorf("dlq %d: headers %s: partition or offset is not a number", d.Offset, fmtHeaders(h))
			continue
		}
		at := origin{int32(p), o}
		if seen[at] {
			dups++
			t.Errorf("dlq %d: %s[%d]@%d again", d.Offset, in, p, o)
			continue
		}
		seen[at] = true
		b, ok := byOrigin[at]
		if !ok {
			t.Errorf("dlq %d names %s[%d]@%d, not a poison pill", d.Offset, in, p, o)
			continue
		}
		parts[b.rec.Partition] = true
		wantH := []kgo.RecordHeader{
			{Key: engine.HeaderError, Value: []byte(b.err)},
			{Key: engine.HeaderSourceTopic, Value: []byte(in)},
			{Key: engine.HeaderSourcePartition, Value: []byte(strconv.Itoa(int(b.rec.Partition)))},
			{Key: engine.HeaderSourceOffset, Value: []byte(strconv.FormatInt(b.rec.Offset, 10))},
		}
		if !slices.EqualFunc(h, wantH, func(x, y kgo.RecordHeader) bool { return x.Key == y.Key && bytes.Equal(x.Value, y.Value) }) {
			t.Errorf("dlq for %s[%d]@%d: headers\n%swant\n%s", in, p, o, fmtHeaders(h), fmtHeaders(wantH))
		}
		if !bytes.Equal(d.Key, b.rec.Key) || !bytes.Equal(d.Value, b.rec.Value) {
			t.Errorf("dlq for %s[%d]@%d: key %q value %q, want the original key %q value %q", in, p, o, d.Key, d.Value, b.rec.Key, b.rec.Value)
		}
	}
	var missing int
	for at, b := range byOrigin {
		if !seen[at] {
			missing++
			t.Errorf("poison pill %s[%d]@%d (%q) is not in %s", in, at.partition, at.offset, b.rec.Value, engine.DLQTopic(app))
		}
	}
	if len(parts) < 4 {
		t.Errorf("poison pills on %d partitions, want several", len(parts))
	}
	t.Logf("input records %d (%d poison pills on %d partitions); dead letters %d, duplicates %d, missing %d; window results: %v; %v",
		len(recs)+len(final), len(bads), len(parts), len(dead), dups, missing, f, time.Since(start).Round(time.Millisecond))
}
