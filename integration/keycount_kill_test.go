package integration

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/changelog"
	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/kafkaio"
)

// The key-count kill test's size: 200,000 records, 10 per key, and 12
// kills while the input is consumed. WEIR_KC_RECORDS, WEIR_KC_KILLS and
// WEIR_KC_SEED (the kill schedule) change them.
const (
	kcRecords = 200_000
	kcPerKey  = 10
	kcKills   = 12
	kcProcs   = 3
	// kcFreshEvery: every 4th killed process comes back on an empty state
	// directory (a new machine), so its tasks restore their whole
	// changelog, compacted by then.
	kcFreshEvery = 4
	// kcCleanerInterval is short so that the dev broker's cleaner
	// compacts the changelog again and again during the run.
	kcCleanerInterval = 300 * time.Millisecond
)

// kcEnvInt returns the positive number in environment variable name, or
// def if it is unset.
func kcEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// kcCompactions counts the compactions of a topic's partitions in a kfake
// cluster, seen from outside: a partition whose size in bytes shrinks was
// compacted (nothing else removes records: retention is off). Two
// compactions between samples count as one.
type kcCompactions struct {
	drops atomic.Int64
	stopc chan struct{}
	done  chan struct{}
}

// kcWatchCompactions samples topic's partition sizes every 50ms on its own
// goroutine until the test ends.
func kcWatchCompactions(t *testing.T, c *kfake.Cluster, topic string) *kcCompactions {
	w := &kcCompactions{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		last := make(map[int32]int64)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stopc:
				return
			case <-tick.C:
			}
			for _, p := range c.PartitionInfos(topic) {
				if p.NumBytes < last[p.Partition] {
					w.drops.Add(1)
				}
				last[p.Partition] = p.NumBytes
			}
		}
	}()
	t.Cleanup(func() {
		close(w.stopc)
		<-w.done
	})
	return w
}

// kcCheckCounts checks, for every key of want, that its count sequence is
// exactly 1..want[k], and that no other key appears. It reports one error
// naming how many keys are wrong and the first few of them.
func kcCheckCounts(t *testing.T, reader string, seqs map[string][]int64, want map[string]int64) {
	t.Helper()
	var wrong []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		s, n := seqs[k], want[k]
		ok := int64(len(s)) == n
		for i := 0; ok && i < len(s); i++ {
			ok = s[i] == int64(i+1)
		}
		if !ok {
			wrong = append(wrong, fmt.Sprintf("key %q emitted %s, want exactly 1..%d", k, fmtSeq(s), n))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(seqs)) {
		if _, ok := want[k]; !ok {
			wrong = append(wrong, fmt.Sprintf("key %q emitted %s, but it is no input key", k, fmtSeq(seqs[k])))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("%s: %d of %d keys wrong, e.g.:\n  %s", reader, len(wrong), len(want), strings.Join(wrong[:min(len(wrong), 10)], "\n  "))
	}
}

// kcKcatSequences reads topic with kcat (librdkafka), read_committed, from
// the beginning to the end, and returns each key's values as counts in
// the order read.
func kcKcatSequences(t *testing.T, kcat, addr, topic string) (map[string][]int64, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), outputTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%p\t%o\t%k\t%s\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, stderr.String())
	}
	seqs := make(map[string][]int64)
	n := 0
	for line := range strings.SplitSeq(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("kcat line %q: want partition, offset, key and value", line)
		}
		v, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			t.Fatalf("kcat: %s[%s]@%s: value %q is not a count", topic, f[0], f[1], f[3])
		}
		seqs[f[2]] = append(seqs[f[2]], v) // kcat prints a partition in offset order
		n++
	}
	return seqs, n
}

// TestExactlyOnceKeyCountKills runs key-count as three processes, exactly
// once, against a dev broker whose cleaner compacts the changelog every
// 300ms, and SIGKILLs a random one of them at random moments, 12 times
// while 200,000 records of 20,000 keys (10 each, interleaved) are
// consumed. Each killed process comes back on its state directory, or
// every 4th time on an empty one (a full restore of its tasks through the
// compacted changelog). Once the group has consumed and committed all the
// input, an independent read_committed reader (franz-go, and kcat if
// installed) must see each key's output counts as exactly 1..10, and the
// changelog's last value of each key must be 10: nothing lost, nothing
// counted twice.
func TestExactlyOnceKeyCountKills(t *testing.T) {
	t.Parallel()
	const (
		in, out = "kc-in", "kc-counts"
		app     = "eos-kc-kills"
		seed    = 20261203
	)
	kills := kcEnvInt(t, "WEIR_KC_KILLS", kcKills)
	records := kcEnvInt(t, "WEIR_KC_RECORDS", kcRecords)
	driverSeed := uint64(kcEnvInt(t, "WEIR_KC_SEED", 11))
	keys := max(records/kcPerKey, 1)
	start := time.Now()
	bin := processorBinary(t)
	log := testLogger(t)
	b, err := kafkaio.StartDevBroker(kafkaio.DevBrokerConfig{Listen: "127.0.0.1:0", Logger: log, CleanerInterval: kcCleanerInterval})
	if err != nil {
		t.Fatalf("start dev broker: %v", err)
	}
	t.Cleanup(b.Close)
	c := connect(t, b.Addr())
	c.log = log
	c.createTopic(in, 8)
	changes := changelog.Topic(app, "count-store")
	compactions := kcWatchCompactions(t, b.Cluster(), changes)

	// Record i has key i mod keys: every key's records are spread over
	// the whole input. The input is written in kills+1 parts, one before
	// each kill, so that every kill comes while input is pending.
	perKey := make(map[string]int64)
	recs := make([]*kgo.Record, records)
	for i := range recs {
		k := fmt.Sprintf("key-%06d", i%keys)
		perKey[k]++
		recs[i] = &kgo.Record{Topic: in, Key: []byte(k), Value: []byte(strconv.Itoa(i))}
	}
	parts := slices.Collect(slices.Chunk(recs, (records+kills)/(kills+1)))
	produced := 0
	produce := func(part []*kgo.Record) {
		t.Helper()
		for chunk := range slices.Chunk(part, 20_000) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := c.prod.ProduceSync(ctx, chunk...).FirstErr()
			cancel()
			if err != nil {
				t.Fatalf("produce the input: %v", err)
			}
		}
		produced += len(part)
	}

	dirs := make([]string, kcProcs)
	lives := make([]*eosLife, kcProcs)
	var fresh []*eosLife // the restarts on an empty state directory
	gen := make([]int, kcProcs)
	run := func(i int, empty bool) {
		name := fmt.Sprintf("run-%d.%d", i, gen[i])
		if empty {
			dirs[i] = t.TempDir()
			name += " (empty state dir)"
		}
		lives[i] = eosStart(t, name, bin, nil, eosKeyCountArgs(c.addr, app, in, out, dirs[i])...)
		if empty && gen[i] > 0 {
			fresh = append(fresh, lives[i])
		}
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
	for i := range kcProcs {
		run(i, true)
	}

	// The driver, as TestExactlyOnceCrash's: a random process at a random
	// moment, but only when the group is Stable with exactly the live
	// processes as members (kfake keeps a member whose JoinGroup answer
	// cannot be delivered until a rebalance times out; see there).
	rng := rand.New(rand.NewPCG(seed, driverSeed))
	var waited time.Duration
	midInput, freshAfterCompaction := 0, 0
	for j := range kills {
		if j < len(parts) {
			produce(parts[j])
		}
		time.Sleep(200*time.Millisecond + time.Duration(rng.Int64N(int64(1800*time.Millisecond))))
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
		if n, ok := eosCommittedSum(c, app, in); ok && n < int64(produced) {
			midInput++
		}
		i := rng.IntN(kcProcs)
		lives[i].kill(t)
		if sig, ok := lives[i].killedBy(); !ok || sig.String() != "killed" {
			t.Fatalf("%s: %v, want killed by SIGKILL", lives[i].name, lives[i].cmd.ProcessState)
		}
		empty := (j+1)%kcFreshEvery == 0
		if empty && compactions.drops.Load() > 0 {
			freshAfterCompaction++
		}
		run(i, empty)
	}
	for _, part := range parts[min(kills, len(parts)):] {
		produce(part)
	}
	killedAt := time.Now()
	t.Logf("%d kills done %v after the start (%v of it waiting for the group to settle); %d of them before the input written so far was consumed and committed; %d compactions of changelog partitions seen so far",
		kills, killedAt.Sub(start).Round(time.Millisecond), waited.Round(time.Millisecond), midInput, compactions.drops.Load())

	if produced != records {
		t.Fatalf("wrote %d input records, want %d", produced, records)
	}
	eosWaitDrained(t, c, app, 3*time.Minute, alive, in)
	t.Logf("input consumed and committed %v after the last kill", time.Since(killedAt).Round(time.Millisecond))

	got := eosReadCommitted(t, c, out, outputTimeout)
	kcCheckCounts(t, "output (franz-go, read_committed)", countSequences(t, got), perKey)
	if len(got) != records {
		t.Errorf("output (franz-go, read_committed): %d records, want one per input record, %d", len(got), records)
	}
	// The changelog's last value per key (read_committed) is the state a
	// restore from scratch would rebuild.
	last := lastCounts(t, eosReadCommitted(t, c, changes, outputTimeout), nil)
	var wrong []string
	for _, k := range slices.Sorted(maps.Keys(perKey)) {
		if n, ok := last[k]; !ok || n != perKey[k] {
			wrong = append(wrong, fmt.Sprintf("key %q: last count %d (present %v), want %d", k, n, ok, perKey[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(last)) {
		if _, ok := perKey[k]; !ok {
			wrong = append(wrong, fmt.Sprintf("key %q: last count %d, but it is no input key", k, last[k]))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("changelog %s (read_committed): %d of %d keys wrong, e.g.:\n  %s", changes, len(wrong), len(perKey), strings.Join(wrong[:min(len(wrong), 10)], "\n  "))
	}
	if dead := eosReadCommitted(t, c, engine.DLQTopic(app), outputTimeout); len(dead) > 0 {
		t.Errorf("%s has %d records, want none: every record has a key", engine.DLQTopic(app), len(dead))
	}

	// The kills must have exercised what the test is about: the cleaner
	// compacted the changelog while the processes ran, and a process on
	// an empty state directory restored whole changelog partitions.
	if n := compactions.drops.Load(); n == 0 {
		t.Errorf("the changelog %s was never compacted during the run (cleaner every %v)", changes, kcCleanerInterval)
	}
	var full int
	for _, l := range fresh {
		for _, r := range eosRestores(l.out.String()) {
			if r.from == 0 && r.replayed > 0 {
				full++
			}
		}
	}
	if len(fresh) > 0 && full == 0 {
		t.Errorf("none of the %d processes started on an empty state directory restored a changelog from its start", len(fresh))
	}
	t.Logf("kill schedule seed %d, kills %d (%d restarts on an empty state dir, %d of them after a compaction, %d full restores), input records %d over %d keys, output records %d, changelog keys %d, compactions of changelog partitions seen %d",
		driverSeed, kills, len(fresh), freshAfterCompaction, full, records, keys, len(got), len(last), compactions.drops.Load())

	if kcat, err := exec.LookPath("kcat"); err != nil {
		t.Logf("kcat not installed, so the librdkafka reader is skipped (apt-get install kcat): %v", err)
	} else {
		seqs, n := kcKcatSequences(t, kcat, c.addr, out)
		kcCheckCounts(t, "output (kcat, read_committed)", seqs, perKey)
		if n != records {
			t.Errorf("output (kcat, read_committed): %d records, want %d", n, records)
		}
	}

	for _, l := range lives {
		l.terminate(t)
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}
