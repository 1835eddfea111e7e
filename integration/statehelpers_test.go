package integration

// Helpers of the state and window tests (state_test.go, windows_test.go).
// Their names are distinct from the harness's so that both files can
// change independently.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/changelog"
	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/windows"
)

// stateHTTP scrapes the engines' /metrics.
var stateHTTP = &http.Client{Timeout: 5 * time.Second}

// samples returns every sample of the engine's /metrics, keyed by series as
// Prometheus' text format prints it: `name{label="value",...}`.
func samples(t *testing.T, r *runner) map[string]float64 {
	t.Helper()
	waitFor(t, setupTimeout, "the engine's HTTP server", func() bool { return r.e.HTTPAddr() != "" })
	resp, err := stateHTTP.Get("http://" + r.e.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	return out
}

func restoreSeries(store string) string {
	return fmt.Sprintf("weir_restore_records_total{store=%q}", store)
}

func watermarkSeries(task string) string {
	return fmt.Sprintf("weir_task_watermark_ms{task=%q}", task)
}

const okCheckpoints = `weir_checkpoint_duration_seconds_count{outcome="ok"}`

// withState returns an engine.Config edit: guarantee g, state directory
// dir and the short session timeout.
func withState(g engine.Guarantee, dir string) func(*engine.Config) {
	return func(cfg *engine.Config) {
		cfg.Guarantee = g
		cfg.StateDir = dir
		cfg.SessionTimeout = sessionTimeout
	}
}

// eachGuarantee runs test as a parallel subtest per processing guarantee:
// what these tests check holds for both.
func eachGuarantee(t *testing.T, test func(t *testing.T, g engine.Guarantee)) {
	for _, g := range []engine.Guarantee{engine.ExactlyOnce, engine.AtLeastOnce} {
		t.Run(string(g), func(t *testing.T) {
			t.Parallel()
			test(t, g)
		})
	}
}

// waitOwnsAll waits until r alone owns every task of want.
func waitOwnsAll(t *testing.T, r *runner, want []string) {
	t.Helper()
	waitFor(t, groupTimeout, fmt.Sprintf("one engine to own all of %v", want), func() bool {
		failIfExited(t, r)
		return r.e.Ready() && slices.Equal(taskIDs(r.e.Tasks()), want)
	})
}

// waitSplit waits until x and y together own every task of want, each at
// least one.
func waitSplit(t *testing.T, x, y *runner, want []string) {
	t.Helper()
	waitFor(t, groupTimeout, fmt.Sprintf("two engines splitting %v", want), func() bool {
		failIfExited(t, x, y)
		tx, ty := taskIDs(x.e.Tasks()), taskIDs(y.e.Tasks())
		return x.e.Ready() && y.e.Ready() && len(tx) > 0 && len(ty) > 0 && partitionOf(want, tx, ty)
	})
}

// offsetsOf lists the end offsets of topic, by partition.
func (c *cluster) offsetsOf(topic string) map[int32]int64 {
	c.t.Helper()
	ends, err := eosEnds(ctxFor(c.t, setupTimeout), c.adm, topic)
	if err != nil {
		c.t.Fatalf("end offsets of %s: %v", topic, err)
	}
	return ends
}

// committedOf returns group's committed offsets of topic (0 where nothing
// is committed).
func (c *cluster) committedOf(group, topic string) map[int32]int64 {
	c.t.Helper()
	resp, err := c.adm.FetchOffsetsForTopics(ctxFor(c.t, setupTimeout), group, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		c.t.Fatalf("committed offsets of %s in %s: %v", group, topic, err)
	}
	out := make(map[int32]int64)
	for p := range c.partitions(topic) {
		if o, ok := resp.Lookup(topic, p); ok && o.At >= 0 {
			out[p] = o.At
		} else {
			out[p] = 0
		}
	}
	return out
}

// waitNoMembers waits until group has no members: a killed member has been
// evicted (its session timed out). From then on the broker rejects its
// offset commits (unknown member), so the committed offsets are final
// until a new member joins.
func (c *cluster) waitNoMembers(group string) {
	c.t.Helper()
	waitFor(c.t, groupTimeout, "group "+group+" to have no members", func() bool {
		ds, err := c.adm.DescribeGroups(ctxFor(c.t, setupTimeout), group)
		if err != nil || ds.Error() != nil {
			return false
		}
		g, ok := ds[group]
		return ok && len(g.Members) == 0
	})
}

// readCommitted is eosReadCommitted with the package's output deadline:
// every committed record below the current end offsets, in partition then
// offset order.
func (c *cluster) readCommitted(topic string) []*kgo.Record {
	c.t.Helper()
	return eosReadCommitted(c.t, c, topic, outputTimeout)
}

// manualProducer returns a producer that writes each record to the
// partition set in it.
func manualProducer(t *testing.T, c *cluster) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produceWith(t *testing.T, cl *kgo.Client, recs []*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(ctxFor(t, setupTimeout), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// countSequences returns, per key, the key-count values of recs in the
// order they were read (partition, then offset order, as consume returns
// them; a key lives in one partition).
func countSequences(t *testing.T, recs []*kgo.Record) map[string][]int64 {
	t.Helper()
	seqs := make(map[string][]int64)
	for _, r := range recs {
		n, err := strconv.ParseInt(string(r.Value), 10, 64)
		if err != nil {
			t.Fatalf("output %s[%d]@%d: value %q is not a count", r.Topic, r.Partition, r.Offset, r.Value)
		}
		seqs[string(r.Key)] = append(seqs[string(r.Key)], n)
	}
	return seqs
}

// checkOneToN checks that every key of want emitted exactly the counts
// 1..want[k], in order, and that no other key appears.
func checkOneToN(t *testing.T, phase string, seqs map[string][]int64, want map[string]int64) {
	t.Helper()
	for k, n := range want {
		s := seqs[k]
		ok := int64(len(s)) == n
		for i := 0; ok && i < len(s); i++ {
			ok = s[i] == int64(i+1)
		}
		if !ok {
			t.Errorf("%s: key %q emitted %s, want exactly 1..%d", phase, k, fmtSeq(s), n)
		}
	}
	for k := range seqs {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected key %q in the output", phase, k)
		}
	}
}

// fmtSeq prints a count sequence, shortening runs of +1 steps.
func fmtSeq(s []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		if j > i {
			fmt.Fprintf(&b, "%d..%d", s[i], s[j])
		} else {
			fmt.Fprintf(&b, "%d", s[i])
		}
		i = j + 1
	}
	b.WriteByte(']')
	return b.String()
}

// lastCounts returns, per key, the count in the last changelog record of
// the key in each partition below upTo[partition] (all when upTo is nil).
// recs are a key-count changelog as readCommitted returns them.
func lastCounts(t *testing.T, recs []*kgo.Record, upTo map[int32]int64) map[string]int64 {
	t.Helper()
	out := make(map[string]int64)
	for _, r := range recs {
		if upTo != nil && r.Offset >= upTo[r.Partition] {
			continue
		}
		v, deleted, err := changelog.DecodeValue(r.Value)
		if err != nil || deleted || len(v) != 8 {
			t.Fatalf("changelog %s[%d]@%d: value %x is not a count (deleted %v, err %v)", r.Topic, r.Partition, r.Offset, r.Value, deleted, err)
		}
		out[string(r.Key)] = int64(binary.BigEndian.Uint64(v))
	}
	return out
}

// restoredRE matches the engine's log line of one store's restore.
var restoredRE = regexp.MustCompile(`msg=restored .*?task=(\d+)_(\d+) store=(\S+) from=(-?\d+) end=(-?\d+) records=(\d+)`)

// restoredRange is one "restored" log line.
type restoredRange struct {
	store            string
	from, end, count int64
}

// restoredRanges parses the "restored" lines of a log, per partition of
// sub-topology 0 (the first line per task and store).
func restoredRanges(t *testing.T, log string) map[int32]restoredRange {
	t.Helper()
	out := make(map[int32]restoredRange)
	for _, m := range restoredRE.FindAllStringSubmatch(log, -1) {
		if m[1] != "0" {
			continue
		}
		p, _ := strconv.Atoi(m[2])
		if _, ok := out[int32(p)]; ok {
			continue
		}
		from, _ := strconv.ParseInt(m[4], 10, 64)
		end, _ := strconv.ParseInt(m[5], 10, 64)
		n, _ := strconv.ParseInt(m[6], 10, 64)
		out[int32(p)] = restoredRange{store: m[3], from: from, end: end, count: n}
	}
	return out
}

// --- window-count input and results ---

// click is one window-count input event and where it is written.
type click struct {
	user string
	ts   int64
	part int32
}

// windowSize is builtin.DefaultWindowCount's window, in ms.
const windowSize = int64(10_000)

// genClicks returns n clicks of users u00..u<users-1> on an event-time
// clock that advances evenly from base over span; each click's timestamp
// is the clock plus a jitter in [0, jitter), so, in production order,
// a click is never more than jitter older than any click before it (the
// clock never goes back). Each goes to a random one of parts partitions,
// so any partition's clicks, a subsequence, keep that bound too.
func genClicks(seed uint64, n, users int, base int64, span, jitter time.Duration, parts int32) []click {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	out := make([]click, n)
	for i := range out {
		clock := base + int64(i)*span.Milliseconds()/int64(n)
		out[i] = click{
			user: fmt.Sprintf("u%02d", rng.IntN(users)),
			ts:   clock + rng.Int64N(jitter.Milliseconds()),
			part: rng.Int32N(parts),
		}
	}
	return out
}

// clickRecords turns clicks into records of topic, in order, each in its
// partition; the record key is unrelated to the user (window-count keys by
// the value's user).
func clickRecords(t *testing.T, topic string, cs []click, tag string) []*kgo.Record {
	t.Helper()
	recs := make([]*kgo.Record, len(cs))
	for i, c := range cs {
		v, err := json.Marshal(builtin.Click{User: c.user, Page: fmt.Sprintf("/%s/%d", tag, i), TS: c.ts})
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: topic, Partition: c.part, Key: fmt.Appendf(nil, "%s-%d", tag, i), Value: v}
	}
	return recs
}

// alignedBase returns an epoch-ms event time an hour ago, on a window
// boundary.
func alignedBase() int64 {
	ms := time.Now().Add(-time.Hour).UnixMilli()
	return ms - ms%windowSize
}

// winKey is one (user, window start).
type winKey struct {
	user  string
	start int64
}

// windowOracle counts clicks per user and tumbling window, keeping the
// windows that close at watermark wm (end <= wm; grace 0).
func windowOracle(cs []click, wm int64) map[winKey]int64 {
	out := make(map[winKey]int64)
	for _, c := range cs {
		start := c.ts - c.ts%windowSize
		if start+windowSize <= wm {
			out[winKey{c.user, start}]++
		}
	}
	return out
}

// maxTSByPartition returns the largest timestamp per partition.
func maxTSByPartition(cs []click) map[int32]int64 {
	out := make(map[int32]int64)
	for _, c := range cs {
		if m, ok := out[c.part]; !ok || c.ts > m {
			out[c.part] = c.ts
		}
	}
	return out
}

func headerOf(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// checkWindowResults checks window-count output recs of application app
// against want: exactly one final result per (user, window) of want, with
// its count, value, headers, timestamp and a unique result id.
func checkWindowResults(t *testing.T, app string, recs []*kgo.Record, want map[winKey]int64) {
	t.Helper()
	seen := make(map[winKey]bool)
	ids := make(map[string]winKey)
	for _, r := range recs {
		where := fmt.Sprintf("%s[%d]@%d", r.Topic, r.Partition, r.Offset)
		var res builtin.WindowCountResult
		if err := json.Unmarshal(r.Value, &res); err != nil {
			t.Errorf("%s: value %q: %v", where, r.Value, err)
			continue
		}
		k := winKey{res.Key, res.WindowStart}
		if string(r.Key) != res.Key {
			t.Errorf("%s: record key %q, value key %q", where, r.Key, res.Key)
		}
		if res.WindowStart%windowSize != 0 || res.WindowEnd != res.WindowStart+windowSize {
			t.Errorf("%s: window [%d, %d) is not a %dms tumbling window", where, res.WindowStart, res.WindowEnd, windowSize)
		}
		if seen[k] {
			t.Errorf("%s: second result for user %q window %d", where, k.user, k.start)
		}
		seen[k] = true
		if n, ok := want[k]; !ok {
			t.Errorf("%s: unexpected result for user %q window [%d, %d) count %d", where, k.user, res.WindowStart, res.WindowEnd, res.Count)
		} else if res.Count != n {
			t.Errorf("%s: user %q window [%d, %d): count %d, want %d", where, k.user, res.WindowStart, res.WindowEnd, res.Count, n)
		}
		wantH := map[string]string{
			windows.HeaderWindowStart: strconv.FormatInt(res.WindowStart, 10),
			windows.HeaderWindowEnd:   strconv.FormatInt(res.WindowEnd, 10),
			windows.HeaderFinal:       "true",
			// "count" is the name of WindowCount's aggregate operator.
			windows.HeaderResultID: windows.ResultID(app, "count", r.Key, windows.Window{Start: res.WindowStart, End: res.WindowEnd}),
		}
		for h, v := range wantH {
			if got, ok := headerOf(r, h); !ok || got != v {
				t.Errorf("%s: header %s = %q (present %v), want %q", where, h, got, ok, v)
			}
		}
		id, _ := headerOf(r, windows.HeaderResultID)
		if prev, dup := ids[id]; dup {
			t.Errorf("%s: result id %s also names %v", where, id, prev)
		}
		ids[id] = k
		if ts := r.Timestamp.UnixMilli(); ts != res.WindowEnd-1 {
			t.Errorf("%s: timestamp %d, want the window's last instant %d", where, ts, res.WindowEnd-1)
		}
	}
	for k, n := range want {
		if !seen[k] {
			t.Errorf("no result for user %q window %d (count %d)", k.user, k.start, n)
		}
	}
}

// downstreamTasks returns the ids of the windowed sub-topology's tasks
// (the one reading the repartition topic), and that topic.
func downstreamTasks(t *testing.T, r *runner, n int) ([]string, string) {
	t.Helper()
	for _, st := range r.e.Plan().Subtopologies {
		for _, s := range st.Sources {
			if s.Internal {
				return allTasks(st.ID, n), s.Topic
			}
		}
	}
	t.Fatal("the topology has no repartition source")
	return nil, ""
}

// sumOffsets adds up offsets.
func sumOffsets(m map[int32]int64) int64 {
	var n int64
	for _, o := range m {
		n += o
	}
	return n
}
