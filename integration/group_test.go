package integration

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/engine"
)

// guarantees are the processing guarantees the group tests run under.
var guarantees = []engine.Guarantee{engine.ExactlyOnce, engine.AtLeastOnce}

// lazyCommits makes an engine checkpoint as rarely as its guarantee
// allows, so that when it stops or gives partitions away it has processed
// much that is not committed yet, and so that its polls wait long for
// records. At least once: only at rebalances and at the stop. Exactly
// once: every 6s, under the engine's 10s transaction timeout (the broker
// aborts a transaction open longer, and fences its producer).
func lazyCommits(g engine.Guarantee) time.Duration {
	if g == engine.AtLeastOnce {
		return 10 * time.Minute
	}
	return 6 * time.Second
}

// TestTwoEnginesShareAndHandOff starts two engines of one application on
// an 8-partition input. They split the 8 tasks between them; all records
// are processed once. Then one stops gracefully while records keep coming;
// the other takes every task over; every record, before, during and after
// the handoff, is in the output exactly once (a graceful stop commits
// before its partitions move, so there is nothing to repeat, whatever the
// guarantee).
func TestTwoEnginesShareAndHandOff(t *testing.T) {
	t.Parallel()
	for _, g := range guarantees {
		t.Run(string(g), func(t *testing.T) {
			t.Parallel()
			testShareAndHandOff(t, g)
		})
	}
}

func testShareAndHandOff(t *testing.T, g engine.Guarantee) {
	const (
		in, out = "events", "events-copy"
		app     = "two-engines"
		batch   = 1000
	)
	c := newCluster(t)
	c.createTopic(in, 8)
	// a commits lazily, so much of what it processed is uncommitted when
	// it stops: only its graceful stop (a last commit, or under exactly
	// once an abort) keeps the output free of duplicates.
	a := startEngine(t, c, builtin.Passthrough(in, out), app, func(cfg *engine.Config) {
		cfg.Guarantee = g
		cfg.SessionTimeout = sessionTimeout
		cfg.CommitInterval = lazyCommits(g)
	})
	b := startEngine(t, c, builtin.Passthrough(in, out), app, func(cfg *engine.Config) {
		cfg.Guarantee = g
		cfg.SessionTimeout = sessionTimeout
	})
	sources := a.e.Plan().SourceTopics()
	want8 := allTasks(0, 8)

	waitFor(t, groupTimeout, "both engines ready, splitting the 8 tasks", func() bool {
		failIfExited(t, a, b)
		ta, tb := taskIDs(a.e.Tasks()), taskIDs(b.e.Tasks())
		return a.e.Ready() && b.e.Ready() && len(ta) > 0 && len(tb) > 0 && partitionOf(want8, ta, tb)
	})
	t.Logf("split: a=%v b=%v", taskIDs(a.e.Tasks()), taskIDs(b.e.Tasks()))

	var want []kv
	records := func(phase string, n int) []*kgo.Record {
		recs := make([]*kgo.Record, 0, n)
		for i := range n {
			k, v := fmt.Sprintf("k%03d", i%97), fmt.Sprintf("%s-%05d", phase, i)
			recs = append(recs, &kgo.Record{Topic: in, Key: []byte(k), Value: []byte(v)})
			want = append(want, kv{k, v})
		}
		return recs
	}
	c.produce(records("before", batch))
	// a commits lazily (see above), so the check that nothing more
	// arrives waits for the end of the test.
	got := c.consume(out, len(want))
	sameMultiset(t, "output with two engines", kvs(got), want)
	inParts := func(recs []*kgo.Record) map[int32]bool {
		m := make(map[int32]bool)
		for _, r := range recs {
			m[r.Partition] = true
		}
		return m
	}
	if n := len(inParts(got)); n != 8 {
		t.Fatalf("output covers %d partitions, want 8 (the input is spread over all)", n)
	}

	// Stop a while records are being produced: the stop happens at a batch
	// boundary with records in flight.
	during := records("during", batch)
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for chunk := range slices.Chunk(during, 50) {
			if err := c.prod.ProduceSync(ctxFor(t, setupTimeout), chunk...).FirstErr(); err != nil {
				t.Errorf("produce during handoff: %v", err)
				return
			}
		}
	}()
	a.stop(t)
	if ts := a.e.Tasks(); len(ts) != 0 {
		t.Errorf("stopped engine still lists tasks %v", taskIDs(ts))
	}
	waitFor(t, groupTimeout, "the remaining engine to own all 8 tasks", func() bool {
		failIfExited(t, b)
		return slices.Equal(taskIDs(b.e.Tasks()), want8)
	})
	<-produced

	c.produce(records("after", batch))
	got = c.readOutput(app, sources, out, len(want))
	sameMultiset(t, "output after the handoff", kvs(got), want)
}

// TestEngineJoinsWhileRecordsFlow starts a second engine while the first
// is processing a stream of records. The cooperative rebalance moves half
// the tasks; the first engine commits before it lets them go (it commits
// lazily otherwise), so every record is in the output exactly once.
func TestEngineJoinsWhileRecordsFlow(t *testing.T) {
	t.Parallel()
	for _, g := range guarantees {
		t.Run(string(g), func(t *testing.T) {
			t.Parallel()
			testJoinWhileFlowing(t, g)
		})
	}
}

func testJoinWhileFlowing(t *testing.T, g engine.Guarantee) {
	const (
		in, out = "flow", "flow-copy"
		app     = "join-while-flowing"
		total   = 4000
	)
	c := newCluster(t)
	c.createTopic(in, 8)
	a := startEngine(t, c, builtin.Passthrough(in, out), app, func(cfg *engine.Config) {
		cfg.Guarantee = g
		cfg.SessionTimeout = sessionTimeout
		cfg.CommitInterval = lazyCommits(g)
	})
	want8 := allTasks(0, 8)
	waitFor(t, groupTimeout, "the first engine to own all 8 tasks", func() bool {
		failIfExited(t, a)
		return slices.Equal(taskIDs(a.e.Tasks()), want8)
	})

	var want []kv
	var recs []*kgo.Record
	for i := range total {
		k, v := fmt.Sprintf("k%03d", i%101), fmt.Sprintf("v%05d", i)
		recs = append(recs, &kgo.Record{Topic: in, Key: []byte(k), Value: []byte(v)})
		want = append(want, kv{k, v})
	}
	// Produce the first quarter, then keep producing in small chunks until
	// the second engine has its share, then the rest.
	c.produce(recs[:total/4])
	var b *runner
	rest := slices.Collect(slices.Chunk(recs[total/4:], 25))
	for i, chunk := range rest {
		c.produce(chunk)
		if i == 0 {
			b = startEngine(t, c, builtin.Passthrough(in, out), app, func(cfg *engine.Config) {
				cfg.Guarantee = g
				cfg.SessionTimeout = sessionTimeout
			})
		}
		if i == len(rest)/2 {
			waitFor(t, groupTimeout, "both engines to split the 8 tasks", func() bool {
				failIfExited(t, a, b)
				ta, tb := taskIDs(a.e.Tasks()), taskIDs(b.e.Tasks())
				return len(ta) > 0 && len(tb) > 0 && partitionOf(want8, ta, tb)
			})
		}
	}
	// a commits lazily; stop it so that the check that nothing more
	// arrives need not wait for its next commit.
	a.stop(t)
	got := c.readOutput(app, a.e.Plan().SourceTopics(), out, total)
	sameMultiset(t, "output", kvs(got), want)
}

// TestExactlyOnceRecordsRightAfterARevoke produces records the moment an
// idle engine has given partitions away to a joining one, to the
// partitions it keeps, so that the first batch it polls after the revoke
// holds them. Each record must be in the output once. (The engine resets
// its transaction session after a revoke seen outside a transaction; if
// that reset rewinds the consumer after the batch was polled, the batch is
// processed twice in one committed transaction.)
func TestExactlyOnceRecordsRightAfterARevoke(t *testing.T) {
	t.Parallel()
	for _, interval := range []time.Duration{engine.DefaultConfig().CommitInterval, lazyCommits(engine.ExactlyOnce)} {
		t.Run("commit-interval="+interval.String(), func(t *testing.T) {
			t.Parallel()
			testRecordsRightAfterRevoke(t, interval)
		})
	}
}

func testRecordsRightAfterRevoke(t *testing.T, interval time.Duration) {
	const (
		in, out = "after-revoke", "after-revoke-copy"
		app     = "after-revoke"
		n       = 400
	)
	c := newCluster(t)
	c.createTopic(in, 8)
	a := startEngine(t, c, builtin.Passthrough(in, out), app, func(cfg *engine.Config) {
		cfg.Guarantee = engine.ExactlyOnce
		cfg.SessionTimeout = sessionTimeout
		cfg.CommitInterval = interval
	})
	want8 := allTasks(0, 8)
	waitFor(t, groupTimeout, "the first engine to own all 8 tasks", func() bool {
		failIfExited(t, a)
		return slices.Equal(taskIDs(a.e.Tasks()), want8)
	})
	b := startEngine(t, c, builtin.Passthrough(in, out), app, func(cfg *engine.Config) {
		cfg.Guarantee = engine.ExactlyOnce
		cfg.SessionTimeout = sessionTimeout
	})
	var kept []engine.TaskInfo
	waitFor(t, groupTimeout, "the first engine to give tasks away", func() bool {
		failIfExited(t, a, b)
		kept = a.e.Tasks()
		return len(kept) > 0 && len(kept) < 8
	})
	var recs []*kgo.Record
	var want []kv
	for i := range n {
		ti := kept[i%len(kept)]
		k, v := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)
		recs = append(recs, &kgo.Record{Topic: in, Partition: ti.Partition, Key: []byte(k), Value: []byte(v)})
		want = append(want, kv{k, v})
	}
	if err := c.manual.ProduceSync(ctxFor(t, setupTimeout), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	waitFor(t, groupTimeout, "both engines to split the 8 tasks", func() bool {
		failIfExited(t, a, b)
		return partitionOf(want8, taskIDs(a.e.Tasks()), taskIDs(b.e.Tasks()))
	})
	got := c.readOutput(app, a.e.Plan().SourceTopics(), out, n)
	sameMultiset(t, "output", kvs(got), want)
}
