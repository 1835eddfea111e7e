// Package integration runs weir against a real Kafka-protocol broker (the
// kfake dev broker) over loopback TCP: engines in this process, processor
// binaries as child processes, and kcat as an independent reader. Nothing is
// mocked. Tests wait on conditions with deadlines, never on sleeps.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/kafkaio"
	"github.com/weirstream/weir/topology"
)

// Deadlines. Rebalances with kfake take a few heartbeats (3s each), so the
// generous ones are for group changes; nothing waits for them unless a
// condition is not met yet.
const (
	setupTimeout   = 20 * time.Second
	groupTimeout   = 45 * time.Second
	outputTimeout  = 45 * time.Second
	stopTimeout    = 30 * time.Second
	sessionTimeout = 6 * time.Second // engine.Config.SessionTimeout where rebalances matter
)

// httpClient is for the engines' HTTP servers; a hung server fails the
// request instead of the whole test run.
var httpClient = &http.Client{Timeout: 5 * time.Second}

// waitFor polls cond every 20ms until it returns true, failing the test with
// what was awaited if timeout passes first.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is an io.Writer safe for concurrent writers (loggers, child
// process output).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger returns a logger whose output is printed only if the test
// fails. WEIR_TEST_DEBUG=1 in the environment prints it always, at debug
// level, which includes franz-go's group and transaction decisions. Register it before anything that logs, so that its cleanup runs
// last.
func testLogger(t *testing.T) *slog.Logger {
	var buf syncBuffer
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("WEIR_TEST_DEBUG") != "" {
			t.Logf("log:\n%s", buf.String())
		}
	})
	level := slog.LevelInfo
	if os.Getenv("WEIR_TEST_DEBUG") != "" {
		level = slog.LevelDebug // franz-go's own logs too
	}
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))
}

// cluster is a dev broker reached over loopback TCP, with an admin client
// and a producer.
type cluster struct {
	t    *testing.T
	addr string
	adm  *kadm.Client
	prod *kgo.Client
	// manual produces to the partition each record names.
	manual *kgo.Client
	log    *slog.Logger
}

// newCluster starts a dev broker in this process for the test.
func newCluster(t *testing.T) *cluster {
	log := testLogger(t)
	b, err := kafkaio.StartDevBroker(kafkaio.DevBrokerConfig{Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatalf("start dev broker: %v", err)
	}
	t.Cleanup(b.Close)
	c := connect(t, b.Addr())
	c.log = log
	return c
}

// connect returns clients for the broker at addr.
func connect(t *testing.T, addr string) *cluster {
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	t.Cleanup(adm.Close)
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Cleanup(prod.Close)
	manual, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(time.Millisecond), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Cleanup(manual.Close)
	return &cluster{t: t, addr: addr, adm: adm, prod: prod, manual: manual}
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (c *cluster) createTopic(topic string, partitions int32) {
	c.t.Helper()
	resp, err := c.adm.CreateTopic(ctxFor(c.t, setupTimeout), partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		c.t.Fatalf("create topic %s: %v", topic, err)
	}
}

// partitions returns the partition count of topic, waiting for the topic
// to exist (engines create their output topics as they start).
func (c *cluster) partitions(topic string) int32 {
	c.t.Helper()
	var n int32
	waitFor(c.t, setupTimeout, "topic "+topic+" to exist", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		tds, err := c.adm.ListTopics(ctx, topic)
		if err != nil {
			return false
		}
		td, ok := tds[topic]
		if !ok || td.Err != nil || len(td.Partitions) == 0 {
			return false
		}
		n = int32(len(td.Partitions))
		return true
	})
	return n
}

// produce writes recs synchronously, in order, with franz-go's default
// partitioner (murmur2 for keyed records), and returns them with their
// partitions and offsets set.
func (c *cluster) produce(recs []*kgo.Record) []*kgo.Record {
	c.t.Helper()
	if err := c.prod.ProduceSync(ctxFor(c.t, setupTimeout), recs...).FirstErr(); err != nil {
		c.t.Fatalf("produce: %v", err)
	}
	return recs
}

// consume reads topic from the start of every partition, read_committed,
// without a group, until exactly n records have arrived. It fails if more
// arrive in the same poll or the deadline passes first. Records come back
// in partition order, then offset order.
func (c *cluster) consume(topic string, n int) []*kgo.Record {
	c.t.Helper()
	return c.consumeFor("", nil, topic, n)
}

// consumeFor is consume that, when it times out, also reports where group
// stands on sources.
func (c *cluster) consumeFor(group string, sources []string, topic string, n int) []*kgo.Record {
	c.t.Helper()
	parts := make(map[int32]kgo.Offset)
	for p := range c.partitions(topic) {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		c.t.Fatalf("consumer: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), outputTimeout)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			var groupState string
			for _, src := range sources {
				if ok, st := c.caughtUp(group, src); !ok {
					groupState += "\n  group " + group + ": " + st
				}
			}
			c.t.Fatalf("topic %s: %d of %d records after %v:%s%s", topic, len(got), n, outputTimeout, c.describe(topic, got), groupState)
		}
		fs.EachError(func(t string, p int32, err error) {
			c.t.Errorf("consume %s[%d]: %v", t, p, err)
		})
		got = append(got, fs.Records()...)
	}
	if len(got) > n {
		sortRecords(got)
		c.t.Fatalf("topic %s: %d records, want exactly %d:%s%s", topic, len(got), n, c.describe(topic, got), duplicates(got))
	}
	sortRecords(got)
	return got
}

// duplicates describes the records of recs (in partition, offset order)
// whose key, value and partition appear more than once.
func duplicates(recs []*kgo.Record) string {
	type id struct {
		p    int32
		k, v string
	}
	first := make(map[id]int64)
	var lines []string
	for _, r := range recs {
		x := id{r.Partition, string(r.Key), string(r.Value)}
		if o, ok := first[x]; ok {
			lines = append(lines, fmt.Sprintf("\n  %s[%d]@%d repeats @%d: key %q value %q", r.Topic, r.Partition, r.Offset, o, r.Key, r.Value))
			continue
		}
		first[x] = r.Offset
	}
	if len(lines) == 0 {
		return "\n  (no record repeats another)"
	}
	n := len(lines)
	if n > 30 {
		lines = append(lines[:30], fmt.Sprintf("\n  ... %d repeats in all", n))
	}
	return strings.Join(lines, "")
}

// describe says, per partition of topic, how many records were read and
// where the partition ends.
func (c *cluster) describe(topic string, got []*kgo.Record) string {
	read := make(map[int32]int)
	for _, r := range got {
		read[r.Partition]++
	}
	ends, err := c.endOffsets(topic)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for p, end := range ends {
		lines = append(lines, fmt.Sprintf("\n  %s[%d]: read %d, end offset %d", topic, p, read[p], end))
	}
	slices.Sort(lines)
	return strings.Join(lines, "")
}

// endOffsets returns the high watermark of every partition of topic.
func (c *cluster) endOffsets(topic string) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	ends, err := c.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	m := make(map[int32]int64)
	ends.Each(func(lo kadm.ListedOffset) { m[lo.Partition] = lo.Offset })
	return m, nil
}

// readRange reads topic read_committed from from[p] (0 if absent) up to
// to[p] in every partition of to, and returns the data records in partition
// then offset order. Engines write transactionally, so offsets are not
// record counts: commit and abort markers take offsets, aborted records are
// skipped. The reader keeps the markers to see its position reach the end,
// and drops them. If a transaction in the range is still open, readRange
// waits for it to end. It gives up after timeout, reporting false.
func (c *cluster) readRange(topic string, from, to map[int32]int64, timeout time.Duration) ([]*kgo.Record, bool, string) {
	parts := make(map[int32]kgo.Offset)
	next := make(map[int32]int64)
	for p, end := range to {
		if from[p] < end {
			parts[p] = kgo.NewOffset().At(from[p])
			next[p] = from[p]
		}
	}
	if len(parts) == 0 {
		return nil, true, ""
	}
	cl, err := c.partitionReader(topic, parts)
	if err != nil {
		return nil, false, err.Error()
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	behind := func() string {
		var s []string
		for p, n := range next {
			if n < to[p] {
				s = append(s, fmt.Sprintf("%s[%d] at %d of %d", topic, p, n, to[p]))
			}
		}
		slices.Sort(s)
		return strings.Join(s, ", ")
	}
	var data []*kgo.Record
	for behind() != "" {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return data, false, "reading stopped (an open transaction?): " + behind()
		}
		var errs []string
		fs.EachError(func(t string, p int32, err error) { errs = append(errs, fmt.Sprintf("%s[%d]: %v", t, p, err)) })
		if len(errs) > 0 {
			return data, false, strings.Join(errs, "; ")
		}
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() && r.Offset < to[r.Partition] {
				data = append(data, r)
			}
		})
	}
	sortRecords(data)
	return data, true, ""
}

func sortRecords(recs []*kgo.Record) {
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Partition != recs[j].Partition {
			return recs[i].Partition < recs[j].Partition
		}
		return recs[i].Offset < recs[j].Offset
	})
}

// consumeToEnd reads every committed data record of topic up to the end
// offsets it has now (waiting for open transactions there to end).
func (c *cluster) consumeToEnd(topic string) []*kgo.Record {
	c.t.Helper()
	c.partitions(topic) // wait for the topic
	ends, err := c.endOffsets(topic)
	if err != nil {
		c.t.Fatal(err)
	}
	data, ok, why := c.readRange(topic, nil, ends, outputTimeout)
	if !ok {
		c.t.Fatalf("reading %s to its end: %s", topic, why)
	}
	return data
}

// waitCaughtUp waits until group has consumed every committed record of
// every partition of the topics: its committed offset is the end offset, or
// only transaction markers and aborted records lie between the two. Pass
// the topics in sub-topology order (as Plan.SourceTopics does): a task
// commits its input offsets only with (exactly-once: in the same
// transaction as) or after (at-least-once) its outputs, so once a topic is
// caught up, what it fed into the next topic is final, and the next topic's
// check sees all of it.
func (c *cluster) waitCaughtUp(group string, topics ...string) {
	c.t.Helper()
	for _, topic := range topics {
		var last string
		deadline := time.Now().Add(outputTimeout)
		for {
			ok, state := c.caughtUp(group, topic)
			if ok {
				break
			}
			last = state
			if time.Now().After(deadline) {
				c.t.Fatalf("group %s did not consume all of %s within %v: %s", group, topic, outputTimeout, last)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (c *cluster) caughtUp(group, topic string) (bool, string) {
	ends, err := c.endOffsets(topic)
	if err != nil {
		return false, err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	resp, err := c.adm.FetchOffsetsForTopics(ctx, group, topic)
	if err != nil {
		return false, err.Error()
	}
	committed := make(map[int32]int64)
	var state []string
	for p, end := range ends {
		if o, found := resp.Lookup(topic, p); found && o.Err == nil && o.At >= 0 {
			committed[p] = o.At
		}
		if committed[p] != end {
			state = append(state, fmt.Sprintf("%s[%d] committed %d end %d", topic, p, committed[p], end))
		}
	}
	slices.Sort(state)
	if len(state) == 0 {
		return true, ""
	}
	// Between the committed and end offsets: markers only, or records?
	data, ok, why := c.readRange(topic, committed, ends, 2*time.Second)
	if !ok {
		return false, strings.Join(state, ", ") + ": " + why
	}
	if len(data) > 0 {
		return false, strings.Join(state, ", ") + fmt.Sprintf(": %d records not consumed", len(data))
	}
	return true, ""
}

// assertComplete checks that got is all of topic: every committed data
// record in the topic now is one of got. Call it after waitCaughtUp, so
// that nothing more is coming.
func (c *cluster) assertComplete(topic string, got []*kgo.Record) {
	c.t.Helper()
	all := c.consumeToEnd(topic)
	type at struct {
		p int32
		o int64
	}
	seen := make(map[at]bool)
	for _, r := range got {
		seen[at{r.Partition, r.Offset}] = true
	}
	var extra []string
	nExtra := 0
	for _, r := range all {
		if !seen[at{r.Partition, r.Offset}] {
			nExtra++
			extra = append(extra, fmt.Sprintf("%s[%d]@%d key %q value %q", topic, r.Partition, r.Offset, r.Key, r.Value))
		}
		delete(seen, at{r.Partition, r.Offset})
	}
	if len(extra) > 0 {
		if len(extra) > 20 {
			extra = append(extra[:20], fmt.Sprintf("... and %d more", len(extra)-20))
		}
		c.t.Errorf("%s: %d records besides the %d expected:\n%s", topic, nExtra, len(got), strings.Join(extra, "\n"))
	}
	if len(seen) > 0 {
		c.t.Errorf("%s: %d of the records read earlier are no longer there", topic, len(seen))
	}
}

// readOutput reads exactly n records of topic, waits until group has
// consumed all of sources (in sub-topology order), and checks that no
// further records arrived in topic.
func (c *cluster) readOutput(group string, sources []string, topic string, n int) []*kgo.Record {
	c.t.Helper()
	got := c.consumeFor(group, sources, topic, n)
	c.waitCaughtUp(group, sources...)
	c.assertComplete(topic, got)
	return got
}

// murmur2 returns the partition Kafka's default partitioner picks for key.
func murmur2(topic string, key []byte, partitions int32) int32 {
	return int32(kgo.StickyKeyPartitioner(nil).ForTopic(topic).Partition(&kgo.Record{Key: key}, int(partitions)))
}

// runner is an Engine running in a goroutine of the test.
type runner struct {
	e      *engine.Engine
	cancel context.CancelFunc
	done   chan struct{}
	err    error // valid once done is closed
}

// startEngine runs top as application appID against c. edit, if not nil,
// adjusts the configuration. The engine is stopped at cleanup; Run must
// return nil then.
func startEngine(t *testing.T, c *cluster, top *topology.Topology, appID string, edit func(*engine.Config)) *runner {
	t.Helper()
	cfg := engine.DefaultConfig()
	cfg.Brokers = []string{c.addr}
	cfg.AppID = appID
	cfg.Logger = c.log.With("engine", fmt.Sprintf("%p", top))
	cfg.StateDir = t.TempDir() // each engine is a process of its own
	if edit != nil {
		edit(&cfg)
	}
	e, err := engine.New(top, cfg)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{e: e, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = e.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
			if r.err != nil {
				t.Errorf("engine %s: Run: %v", appID, r.err)
			}
		case <-time.After(stopTimeout):
			t.Errorf("engine %s: Run did not return within %v of cancel", appID, stopTimeout)
		}
	})
	return r
}

// stop cancels the engine and waits for Run, which must return nil.
func (r *runner) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(stopTimeout):
		t.Fatalf("Run did not return within %v of cancel", stopTimeout)
	}
	if r.err != nil {
		t.Fatalf("Run returned %v after a graceful stop, want nil", r.err)
	}
}

// exited reports Run's error if it has returned.
func (r *runner) exited() (bool, error) {
	select {
	case <-r.done:
		return true, r.err
	default:
		return false, nil
	}
}

// taskIDs returns the sorted ids of tasks.
func taskIDs(tasks []engine.TaskInfo) []string {
	ids := make([]string, 0, len(tasks))
	for _, ti := range tasks {
		ids = append(ids, ti.ID)
	}
	sort.Strings(ids)
	return ids
}

// allTasks returns the task ids "<sub>_0".."<sub>_<n-1>".
func allTasks(sub, n int) []string {
	ids := make([]string, 0, n)
	for p := range n {
		ids = append(ids, fmt.Sprintf("%d_%d", sub, p))
	}
	sort.Strings(ids)
	return ids
}

// partitionOf splits a set of task id lists: it reports whether every id of
// want appears in exactly one list and no list has anything else.
func partitionOf(want []string, lists ...[]string) bool {
	seen := make(map[string]int)
	for _, l := range lists {
		for _, id := range l {
			seen[id]++
		}
	}
	if len(seen) != len(want) {
		return false
	}
	for _, id := range want {
		if seen[id] != 1 {
			return false
		}
	}
	return true
}

// failIfExited fails the test if any engine's Run has returned: a
// condition that waits on them would otherwise time out with less to go on.
func failIfExited(t *testing.T, rs ...*runner) {
	t.Helper()
	for i, r := range rs {
		if done, err := r.exited(); done {
			t.Fatalf("engine %d: Run returned early: %v", i, err)
		}
	}
}

// kv is a record's key and value as text, for comparing multisets.
type kv struct{ k, v string }

func kvs(recs []*kgo.Record) []kv {
	out := make([]kv, 0, len(recs))
	for _, r := range recs {
		out = append(out, kv{string(r.Key), string(r.Value)})
	}
	return out
}

// sameMultiset reports the differences between two multisets of records.
func sameMultiset(t *testing.T, what string, got, want []kv) {
	t.Helper()
	count := make(map[kv]int)
	for _, x := range want {
		count[x]++
	}
	for _, x := range got {
		count[x]--
	}
	var diffs []string
	for x, n := range count {
		switch {
		case n > 0:
			diffs = append(diffs, fmt.Sprintf("missing %dx (%q, %q)", n, x.k, x.v))
		case n < 0:
			diffs = append(diffs, fmt.Sprintf("extra %dx (%q, %q)", -n, x.k, x.v))
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
		}
		t.Errorf("%s: %d records, want %d:\n%s", what, len(got), len(want), strings.Join(diffs, "\n"))
	}
}

// capped reports at most 20 errors per check and then how many more there
// were, so that one systematic fault does not print thousands of lines.
type capped struct {
	t testing.TB
	n int
}

func capErrors(t testing.TB) *capped {
	c := &capped{t: t}
	t.Cleanup(func() {
		if c.n > 20 {
			t.Errorf("... and %d more errors like the above", c.n-20)
		}
	})
	return c
}

func (c *capped) Errorf(format string, args ...any) {
	c.t.Helper()
	if c.n++; c.n <= 20 {
		c.t.Errorf(format, args...)
	}
}

// partitionReader returns a read_committed client of topic's partitions
// from the offsets given, which keeps transaction markers (so a reader
// sees a partition that ends in one end).
func (c *cluster) partitionReader(topic string, from map[int32]kgo.Offset) (*kgo.Client, error) {
	return kgo.NewClient(
		kgo.SeedBrokers(c.addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
}
