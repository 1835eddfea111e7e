package integration

// Helpers of the exactly-once tests (eos_test.go). Their names start with
// "eos" so that they cannot clash with the other test files' helpers; the
// harness's (waitFor, connect, startProc, ...) are reused as they are.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/windows"
)

// eosHooks is the processor built with -tags weirtesthooks: its engine
// SIGKILLs itself between the N-th committed transaction and the apply of
// its state when WEIR_TEST_CRASH_AFTER_COMMIT=N is set.
var eosHooks struct {
	once sync.Once
	path string
	err  error
}

// eosHookBinary builds the hook binary once per test run, next to
// processorBinary's (TestMain removes that directory).
func eosHookBinary(t *testing.T) string {
	t.Helper()
	plain := processorBinary(t)
	eosHooks.once.Do(func() {
		eosHooks.path = filepath.Join(filepath.Dir(plain), "processor-weirtesthooks")
		cmd := exec.Command("go", "build", "-tags", "weirtesthooks", "-o", eosHooks.path, "github.com/weirstream/weir/cmd/processor")
		if out, err := cmd.CombinedOutput(); err != nil {
			eosHooks.err = fmt.Errorf("go build -tags weirtesthooks ./cmd/processor: %w\n%s", err, out)
		}
	})
	if eosHooks.err != nil {
		t.Fatal(eosHooks.err)
	}
	return eosHooks.path
}

// eosLife is one life of a processor process: started, and perhaps killed
// and replaced by another life on the same state directory.
type eosLife struct {
	name string
	cmd  *exec.Cmd
	out  syncBuffer // stdout and stderr interleaved
	done chan struct{}
	err  error // valid once done is closed
}

// eosLogTail is how much of each life's output a failed test prints.
const eosLogTail = 24 << 10

// eosStart starts bin with args and extra environment env. The process is
// killed at cleanup if still running; if the test failed, the tail of its
// output is logged.
func eosStart(t *testing.T, name, bin string, env []string, args ...string) *eosLife {
	t.Helper()
	l := &eosLife{name: name, done: make(chan struct{})}
	l.cmd = exec.Command(bin, args...)
	l.cmd.Dir = t.TempDir()
	l.cmd.Env = append(os.Environ(), env...)
	l.cmd.Stdout, l.cmd.Stderr = &l.out, &l.out
	// WEIR_EOS_LOGDIR keeps every life's whole output in DIR/<name>.log,
	// for digging into a failure (a failed test prints only tails).
	if d := os.Getenv("WEIR_EOS_LOGDIR"); d != "" {
		f, err := os.Create(filepath.Join(d, strings.NewReplacer(" ", "_", "/", "_").Replace(name)+".log"))
		if err != nil {
			t.Fatalf("WEIR_EOS_LOGDIR: %v", err)
		}
		t.Cleanup(func() { f.Close() })
		l.cmd.Stdout, l.cmd.Stderr = io.MultiWriter(&l.out, f), io.MultiWriter(&l.out, f)
	}
	if err := l.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		defer close(l.done)
		l.err = l.cmd.Wait()
	}()
	t.Cleanup(func() {
		if t.Failed() && !l.exited() {
			// A live process of a failed test prints its goroutines
			// (SIGQUIT): where a stuck one stands.
			l.cmd.Process.Signal(syscall.SIGQUIT) //nolint:errcheck // it may have just exited
			select {
			case <-l.done:
			case <-time.After(5 * time.Second):
			}
		}
		if !l.exited() {
			l.cmd.Process.Kill() //nolint:errcheck // it may have just exited
			<-l.done
		}
		if t.Failed() {
			s := l.out.String()
			if len(s) > eosLogTail {
				s = "[...]" + s[len(s)-eosLogTail:]
			}
			t.Logf("%s (pid %d, %v): output:\n%s", l.name, l.cmd.Process.Pid, l.cmd.ProcessState, s)
		}
	})
	return l
}

func (l *eosLife) exited() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// httpAddr waits for the process to log its HTTP address.
func (l *eosLife) httpAddr(t *testing.T) string {
	t.Helper()
	var addr string
	waitFor(t, setupTimeout, l.name+" to serve HTTP", func() bool {
		if l.exited() {
			t.Fatalf("%s exited (%v) before serving HTTP", l.name, l.err)
		}
		if m := httpAddrRE.FindStringSubmatch(l.out.String()); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	return addr
}

// kill sends SIGKILL and waits for the process to be gone.
func (l *eosLife) kill(t *testing.T) {
	t.Helper()
	if err := l.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("SIGKILL %s: %v", l.name, err)
	}
	<-l.done
}

// signal sends sig, failing the test if the process is gone.
func (l *eosLife) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := l.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%v to %s: %v", sig, l.name, err)
	}
}

// terminate sends SIGTERM and waits; the process must exit 0.
func (l *eosLife) terminate(t *testing.T) {
	t.Helper()
	l.signal(t, syscall.SIGTERM)
	select {
	case <-l.done:
	case <-time.After(stopTimeout):
		t.Fatalf("%s did not exit within %v of SIGTERM", l.name, stopTimeout)
	}
	if l.err != nil {
		t.Fatalf("%s after SIGTERM: %v, want exit 0", l.name, l.err)
	}
}

// killedBy reports the signal that ended the process, if one did.
func (l *eosLife) killedBy() (syscall.Signal, bool) {
	ws, ok := l.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0, false
	}
	return ws.Signal(), true
}

// eosScrape reads the Prometheus text of the server at addr, keyed by
// series as printed: `name{label="value",...}`.
func eosScrape(addr string) (map[string]float64, error) {
	resp, err := httpClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
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
			return nil, fmt.Errorf("/metrics line %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// eosSum adds the samples of every series of metric name (all labels).
func eosSum(m map[string]float64, name string) float64 {
	var n float64
	for series, v := range m {
		if series == name || strings.HasPrefix(series, name+"{") {
			n += v
		}
	}
	return n
}

// eosRestoredRE matches the engine's log line of one store's restore.
var eosRestoredRE = regexp.MustCompile(`msg=restored .*?task=(\S+) store=(\S+) from=(-?\d+) end=(-?\d+) records=(\d+)`)

// eosRestore is one "restored" log line.
type eosRestore struct {
	task, store         string
	from, end, replayed int64
}

func eosRestores(log string) []eosRestore {
	var out []eosRestore
	for _, m := range eosRestoredRE.FindAllStringSubmatch(log, -1) {
		from, _ := strconv.ParseInt(m[3], 10, 64)
		end, _ := strconv.ParseInt(m[4], 10, 64)
		n, _ := strconv.ParseInt(m[5], 10, 64)
		out = append(out, eosRestore{task: m[1], store: m[2], from: from, end: end, replayed: n})
	}
	return out
}

// eosEnds lists the end offsets of topic by partition.
func eosEnds(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64)
	ends.Each(func(lo kadm.ListedOffset) { out[lo.Partition] = lo.Offset })
	return out, nil
}

// eosReadCommitted reads every record of topic below the end offsets it
// has when called, as a read_committed consumer sees them (aborted data is
// skipped), in partition then offset order. It keeps control records while
// reading, so that a partition ending in a transaction marker is seen to
// end, and drops them from the result. A transaction still open at the
// tail delays it until it ends (the broker aborts it after the producer's
// transaction timeout).
func eosReadCommitted(t *testing.T, c *cluster, topic string, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ends, err := eosEnds(ctx, c.adm, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	parts := make(map[int32]kgo.Offset)
	left := make(map[int32]int64) // partition -> last offset still to see
	for p, end := range ends {
		parts[p] = kgo.NewOffset().AtStart()
		if end > 0 {
			left[p] = end - 1
		}
	}
	cl, err := c.partitionReader(topic, parts)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer cl.Close()
	var got []*kgo.Record
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: partitions (partition: last offset) %v not read to their end within %v", topic, left, timeout)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Errorf("consume %s[%d]: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if last, ok := left[r.Partition]; ok && r.Offset >= last {
				delete(left, r.Partition)
			}
			if r.Offset < ends[r.Partition] && !r.Attrs.IsControl() {
				got = append(got, r)
			}
		})
	}
	slices.SortFunc(got, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return got
}

// eosDrained reports whether group has consumed and committed all of
// topic: in every partition, nothing but transaction markers and aborted
// data lies between the committed offset and the end offset. (Under
// exactly-once a committed offset points just past the last record
// processed, so it stops short of the marker that follows it: comparing
// it with the end offset would wait forever.) The string says what is
// left when it is not.
func eosDrained(c *cluster, group, topic string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	ends, err := eosEnds(ctx, c.adm, topic)
	if err != nil {
		return false, err.Error()
	}
	committed, err := c.adm.FetchOffsetsForTopics(ctx, group, topic)
	if err == nil {
		err = committed.Error() // UNSTABLE_OFFSET_COMMIT while a transaction holds offsets
	}
	if err != nil {
		return false, err.Error()
	}
	from := make(map[int32]kgo.Offset)
	at := make(map[int32]int64)
	for p, end := range ends {
		var o int64
		if oc, ok := committed.Lookup(topic, p); ok && oc.At >= 0 {
			o = oc.At
		}
		if o < end {
			from[p] = kgo.NewOffset().At(o)
			at[p] = o
		}
	}
	if len(from) == 0 {
		return true, ""
	}
	cl, err := c.partitionReader(topic, from)
	if err != nil {
		return false, err.Error()
	}
	defer cl.Close()
	for len(from) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return false, fmt.Sprintf("%s: reading the tails of %v: %v", topic, at, ctx.Err())
		}
		var data string
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := from[r.Partition]; !ok || data != "" {
				return
			}
			if !r.Attrs.IsControl() {
				data = fmt.Sprintf("%s[%d]: committed %d, a record at %d, end %d", topic, r.Partition, at[r.Partition], r.Offset, ends[r.Partition])
				return
			}
			if r.Offset >= ends[r.Partition]-1 {
				delete(from, r.Partition)
			}
		})
		if data != "" {
			return false, data
		}
	}
	return true, ""
}

// eosWindowResult is one window-count result as read, by franz-go or kcat.
type eosWindowResult struct {
	where    string // topic[partition]@offset
	key      string
	value    []byte
	resultID string
	final    string
	start    string // weir.window.start header
	end      string // weir.window.end header
}

func eosResultsOf(recs []*kgo.Record) []eosWindowResult {
	out := make([]eosWindowResult, 0, len(recs))
	for _, r := range recs {
		res := eosWindowResult{where: fmt.Sprintf("%s[%d]@%d", r.Topic, r.Partition, r.Offset), key: string(r.Key), value: r.Value}
		res.resultID, _ = headerOf(r, windows.HeaderResultID)
		res.final, _ = headerOf(r, windows.HeaderFinal)
		res.start, _ = headerOf(r, windows.HeaderWindowStart)
		res.end, _ = headerOf(r, windows.HeaderWindowEnd)
		out = append(out, res)
	}
	return out
}

// eosWindowFigures are the counts a window-count check reports.
type eosWindowFigures struct {
	records, distinct, duplicates, missing, wrongCount, unexpected, duplicateIDs, badHeaders int
}

func (f eosWindowFigures) String() string {
	return fmt.Sprintf("%d output records, %d distinct (user, window), %d duplicates, %d missing, %d wrong counts, %d unexpected, %d duplicate result ids, %d bad headers",
		f.records, f.distinct, f.duplicates, f.missing, f.wrongCount, f.unexpected, f.duplicateIDs, f.badHeaders)
}

// eosCheckWindows checks window-count results of application app against
// the oracle want: one result per (user, window), none missing, each with
// the oracle's count, the contract's headers and a result id of its own.
// It reports errors (at most 20 of each kind) and returns the figures.
func eosCheckWindows(t *testing.T, reader, app string, rs []eosWindowResult, want map[winKey]int64) eosWindowFigures {
	t.Helper()
	f := eosWindowFigures{records: len(rs)}
	report := func(n *int, format string, args ...any) {
		t.Helper()
		if *n++; *n <= 20 {
			t.Errorf(reader+": "+format, args...)
		}
	}
	seen := make(map[winKey]string)
	ids := make(map[string]string)
	for _, r := range rs {
		var res builtin.WindowCountResult
		if err := json.Unmarshal(r.value, &res); err != nil {
			report(&f.badHeaders, "%s: value %q: %v", r.where, r.value, err)
			continue
		}
		k := winKey{res.Key, res.WindowStart}
		if prev, dup := seen[k]; dup {
			report(&f.duplicates, "%s: second result for user %q window %d (first at %s)", r.where, k.user, k.start, prev)
		} else {
			seen[k] = r.where
		}
		if n, ok := want[k]; !ok {
			report(&f.unexpected, "%s: unexpected result for user %q window [%d, %d) count %d", r.where, k.user, res.WindowStart, res.WindowEnd, res.Count)
		} else if res.Count != n {
			report(&f.wrongCount, "%s: user %q window [%d, %d): count %d, want %d", r.where, k.user, res.WindowStart, res.WindowEnd, res.Count, n)
		}
		w := windows.Window{Start: res.WindowStart, End: res.WindowEnd}
		wantID := windows.ResultID(app, "count", []byte(res.Key), w)
		if r.key != res.Key || res.WindowEnd != res.WindowStart+windowSize || r.final != "true" ||
			r.start != strconv.FormatInt(res.WindowStart, 10) || r.end != strconv.FormatInt(res.WindowEnd, 10) || r.resultID != wantID {
			report(&f.badHeaders, "%s: key %q value %s headers start=%q end=%q final=%q id=%q, want key %q, a %dms window, start=%d end=%d final=true id=%s",
				r.where, r.key, r.value, r.start, r.end, r.final, r.resultID, res.Key, windowSize, res.WindowStart, res.WindowEnd, wantID)
		}
		if prev, dup := ids[r.resultID]; dup {
			report(&f.duplicateIDs, "%s: result id %s also at %s", r.where, r.resultID, prev)
		} else {
			ids[r.resultID] = r.where
		}
	}
	f.distinct = len(seen)
	var missing []winKey
	for k := range want {
		if _, ok := seen[k]; !ok {
			missing = append(missing, k)
		}
	}
	slices.SortFunc(missing, func(a, b winKey) int {
		if c := strings.Compare(a.user, b.user); c != 0 {
			return c
		}
		return int(a.start - b.start)
	})
	for _, k := range missing {
		report(&f.missing, "no result for user %q window %d (count %d)", k.user, k.start, want[k])
	}
	return f
}

// eosKcatWindows reads topic with kcat (librdkafka), read_committed, from
// the beginning to the end, and returns its records.
func eosKcatWindows(t *testing.T, kcat, addr, topic string) []eosWindowResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), outputTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%p\t%o\t%k\t%s\t%h\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, stderr.String())
	}
	var out []eosWindowResult
	for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			t.Fatalf("kcat line %q: want partition, offset, key, value and headers", line)
		}
		r := eosWindowResult{where: fmt.Sprintf("%s[%s]@%s", topic, f[0], f[1]), key: f[2], value: []byte(f[3])}
		for _, h := range strings.Split(f[4], ",") {
			k, v, _ := strings.Cut(h, "=")
			switch k {
			case windows.HeaderResultID:
				r.resultID = v
			case windows.HeaderFinal:
				r.final = v
			case windows.HeaderWindowStart:
				r.start = v
			case windows.HeaderWindowEnd:
				r.end = v
			}
		}
		out = append(out, r)
	}
	return out
}

// eosWaitOutput waits until the output of a window-count application is
// complete and final: the distinct (user, window) results reach want, the
// group has consumed and committed every source topic (so no further
// output can come), and the output's end offsets are the same before and
// after that check. It returns the output's end offsets.
func eosWaitOutput(t *testing.T, c *cluster, app string, sources []string, out string, want int, timeout time.Duration, alive func(), diag func() string) map[int32]int64 {
	t.Helper()
	// A consumer that stays open sees the results as they commit.
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.addr),
		kgo.ConsumeTopics(out),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer cl.Close()
	distinct := make(map[winKey]bool)
	var ends map[int32]int64
	var state string
	deadline := time.Now().Add(timeout)
	for {
		if alive != nil {
			alive()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			var res builtin.WindowCountResult
			if json.Unmarshal(r.Value, &res) == nil {
				distinct[winKey{res.Key, res.WindowStart}] = true
			}
		})
		state = fmt.Sprintf("%d of %d distinct results", len(distinct), want)
		if len(distinct) >= want {
			before, err := eosEnds(context.Background(), c.adm, out)
			drained := err == nil
			for _, src := range sources {
				if !drained {
					break
				}
				var left string
				if drained, left = eosDrained(c, app, src); !drained {
					state += "; not drained: " + left
				}
			}
			if drained {
				after, err := eosEnds(context.Background(), c.adm, out)
				if err == nil && fmt.Sprint(before) == fmt.Sprint(after) {
					ends = after
					break
				}
				state += "; the output's end offsets moved"
			}
		}
		if time.Now().After(deadline) {
			var more string
			for _, src := range sources {
				if ok, left := eosDrained(c, app, src); !ok {
					more += "\n  not drained: " + left
				}
			}
			if diag != nil {
				more += diag()
			}
			t.Fatalf("output %s of %s not complete within %v: %s; group: %s%s", out, app, timeout, state, eosGroupState(c, app), more)
		}
	}
	return ends
}

// eosGroupState describes group for failure messages: its state and
// members, with their assignments.
func eosGroupState(c *cluster, group string) string {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	ds, err := c.adm.DescribeGroups(ctx, group)
	if err != nil {
		return err.Error()
	}
	g, ok := ds[group]
	if !ok {
		return "not found"
	}
	if g.Err != nil {
		return g.Err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %d members", g.State, len(g.Members))
	for _, m := range g.Members {
		fmt.Fprintf(&b, "\n  %s %s", m.ClientID, m.MemberID)
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range a.Topics {
				fmt.Fprintf(&b, " %s%v", tp.Topic, tp.Partitions)
			}
		}
	}
	return b.String()
}

// eosStableWith reports whether group is Stable with exactly the members
// whose client ids are clientIDs (weir's client id is "weir@" and its
// HTTP address).
func eosStableWith(c *cluster, group string, clientIDs []string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	ds, err := c.adm.DescribeGroups(ctx, group)
	if err != nil {
		return false
	}
	g, ok := ds[group]
	if !ok || g.Err != nil || g.State != "Stable" || len(g.Members) != len(clientIDs) {
		return false
	}
	var have []string
	for _, m := range g.Members {
		have = append(have, m.ClientID)
	}
	slices.Sort(have)
	want := slices.Sorted(slices.Values(clientIDs))
	return slices.Equal(have, want)
}

// eosCheckRepartition checks that the data records of window-count's
// repartition topic (key = user, timestamp = event time; watermark control
// records aside) are the clicks cs, each exactly once.
func eosCheckRepartition(t *testing.T, recs []*kgo.Record, cs []click) {
	t.Helper()
	count := make(map[winKey]int) // (user, ts)
	for _, c := range cs {
		count[winKey{c.user, c.ts}]++
	}
	var data, extra, missing int
	for _, r := range recs {
		if _, ok := headerOf(r, windows.HeaderKey); ok {
			continue
		}
		data++
		k := winKey{string(r.Key), r.Timestamp.UnixMilli()}
		count[k]--
	}
	var diffs []string
	for k, n := range count {
		switch {
		case n < 0:
			extra += -n
			diffs = append(diffs, fmt.Sprintf("user %q ts %d: %d extra", k.user, k.start, -n))
		case n > 0:
			missing += n
			diffs = append(diffs, fmt.Sprintf("user %q ts %d: %d missing", k.user, k.start, n))
		}
	}
	if extra > 0 || missing > 0 {
		slices.Sort(diffs)
		t.Errorf("repartition topic: %d click records for %d clicks: %d extra, %d missing; e.g.\n%s", data, len(cs), extra, missing, strings.Join(diffs[:min(len(diffs), 10)], "\n"))
	}
}

// eosMetricsDiag returns the series of the processes' metrics that say
// where a stuck pipeline stands (watermarks, lag, aborts), for failure
// messages.
func eosMetricsDiag(addrs ...string) string {
	var b strings.Builder
	for _, addr := range addrs {
		m, err := eosScrape(addr)
		if err != nil {
			fmt.Fprintf(&b, "\n  %s: %v", addr, err)
			continue
		}
		var lines []string
		for series, v := range m {
			for _, p := range []string{"weir_task_watermark_ms", "weir_consumer_lag", "weir_transaction_aborts_total", "weir_tasks", "weir_records_in_total"} {
				if strings.HasPrefix(series, p) {
					lines = append(lines, fmt.Sprintf("%s %v", series, int64(v)))
				}
			}
		}
		slices.Sort(lines)
		fmt.Fprintf(&b, "\n  %s:\n    %s", addr, strings.Join(lines, "\n    "))
	}
	return b.String()
}

// eosStream produces batches from next every interval until stopped, in
// the background. next runs on the stream's goroutine only.
type eosStream struct {
	stopc   chan struct{}
	done    chan struct{}
	batches atomic.Int64
	err     error // valid once done is closed
}

func eosStartStream(t *testing.T, cl *kgo.Client, interval time.Duration, next func() []*kgo.Record) *eosStream {
	s := &eosStream{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
			err := cl.ProduceSync(ctx, next()...).FirstErr()
			cancel()
			if err != nil {
				s.err = err
				return
			}
			s.batches.Add(1)
		}
	}()
	t.Cleanup(s.halt)
	return s
}

func (s *eosStream) halt() {
	select {
	case <-s.stopc:
	default:
		close(s.stopc)
	}
	<-s.done
}

// stop ends the stream and fails the test if a batch failed.
func (s *eosStream) stop(t *testing.T) {
	t.Helper()
	s.halt()
	if s.err != nil {
		t.Fatalf("input stream: %v", s.err)
	}
}

// eosWaitDrained waits until group has consumed and committed every
// source topic, in sub-topology order.
func eosWaitDrained(t *testing.T, c *cluster, group string, timeout time.Duration, alive func(), sources ...string) {
	t.Helper()
	for _, src := range sources {
		var left string
		deadline := time.Now().Add(timeout)
		for {
			if alive != nil {
				alive()
			}
			var ok bool
			if ok, left = eosDrained(c, group, src); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("group %s did not consume and commit all of %s within %v: %s; group: %s", group, src, timeout, left, eosGroupState(c, group))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// eosTxnID returns the transactional id of the process whose state
// directory is dir (engine: the application id and the instance id kept
// in the directory).
func eosTxnID(t *testing.T, app, dir string) string {
	t.Helper()
	var b []byte
	waitFor(t, setupTimeout, "the instance id in "+dir, func() bool {
		var err error
		b, err = os.ReadFile(filepath.Join(dir, "instance-id"))
		return err == nil && len(bytes.TrimSpace(b)) > 0
	})
	return app + "-" + string(bytes.TrimSpace(b))
}

// eosOngoing reports whether the transaction of txnID is open with at
// least one partition in it.
func eosOngoing(c *cluster, txnID string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	ds, err := c.adm.DescribeTransactions(ctx, txnID)
	if err != nil {
		return false, err.Error()
	}
	d, ok := ds[txnID]
	if !ok {
		return false, "not described"
	}
	if d.Err != nil {
		return false, d.Err.Error()
	}
	n := 0
	for _, ps := range d.Topics {
		n += len(ps)
	}
	return d.State == "Ongoing" && n > 0, fmt.Sprintf("%s with %d partitions", d.State, n)
}

// eosFaults fails a seeded random fraction of some requests of a kfake
// cluster with errors a real broker returns, while switched on.
type eosFaults struct {
	on   atomic.Bool
	mu   sync.Mutex
	rng  *rand.Rand
	hits map[string]int
}

// eosFault is one kind of injected failure: a fraction of the requests
// with key, answered with one of errs.
type eosFault struct {
	key  kmsg.Key
	rate float64
	errs []*kerr.Error
	// only picks the requests to consider (nil: all of them).
	only func(kmsg.Request) bool
}

func eosInstallFaults(c *kfake.Cluster, seed uint64, faults ...eosFault) *eosFaults {
	f := &eosFaults{rng: rand.New(rand.NewPCG(seed, seed+1)), hits: make(map[string]int)}
	for _, ft := range faults {
		c.ControlKey(int16(ft.key), func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			if !f.on.Load() || ft.only != nil && !ft.only(req) {
				return nil, nil, false
			}
			f.mu.Lock()
			hit := f.rng.Float64() < ft.rate
			e := ft.errs[f.rng.IntN(len(ft.errs))]
			if hit {
				f.hits[fmt.Sprintf("%s %s", ft.key.Name(), e.Message)]++
			}
			f.mu.Unlock()
			if !hit {
				return nil, nil, false
			}
			return eosFailed(req, e.Code), nil, true
		})
	}
	return f
}

// eosFailed answers req with code in every error field that matters.
func eosFailed(req kmsg.Request, code int16) kmsg.Response {
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	case *kmsg.EndTxnRequest:
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.TxnOffsetCommitRequest:
		resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	case *kmsg.HeartbeatRequest:
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp
	}
	panic(fmt.Sprintf("eosFailed: no failure for %T", req))
}

func (f *eosFaults) counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.hits)
}

// eosSupervisor runs an engine and, as a process supervisor does in
// production, starts it again on the same state directory whenever Run
// returns an error (a producer it deems unusable).
type eosSupervisor struct {
	name     string
	cancel   context.CancelFunc
	done     chan struct{}
	err      error // of the last Run, valid once done is closed
	restarts atomic.Int64
	mu       sync.Mutex
	cur      *engine.Engine
	errs     []string // the errors that caused restarts
}

func eosSupervise(t *testing.T, name string, newEngine func() (*engine.Engine, error)) *eosSupervisor {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &eosSupervisor{name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			e, err := newEngine()
			if err != nil {
				s.err = err
				return
			}
			s.mu.Lock()
			s.cur = e
			s.mu.Unlock()
			err = e.Run(ctx)
			if ctx.Err() != nil {
				s.err = err
				return
			}
			if err == nil {
				s.err = errors.New("Run returned nil before it was cancelled")
				return
			}
			s.restarts.Add(1)
			s.mu.Lock()
			s.errs = append(s.errs, err.Error())
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(stopTimeout):
			t.Errorf("%s: Run did not return within %v of cancel", name, stopTimeout)
		}
	})
	return s
}

// engine returns the engine running now.
func (s *eosSupervisor) engine() *engine.Engine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// stop cancels the engine; its last Run must return nil.
func (s *eosSupervisor) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		var stuck []string
		for g := range strings.SplitSeq(eosStacks(), "\n\n") {
			if strings.Contains(g, "weir/engine.") {
				stuck = append(stuck, g)
			}
		}
		t.Fatalf("%s: Run did not return within %v of cancel; the engine's goroutines:\n%s", s.name, stopTimeout, strings.Join(stuck, "\n\n"))
	}
	if s.err != nil {
		t.Fatalf("%s: Run returned %v after a graceful stop, want nil", s.name, s.err)
	}
}

func (s *eosSupervisor) failIfDone(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
		t.Fatalf("%s stopped: %v", s.name, s.err)
	default:
	}
}

// eosEndDeadlock looks for the deadlock between the engine's loop, inside
// GroupTransactSession.End, and franz-go's group goroutine, waiting for the
// loop's AllowRebalance (BlockRebalanceOnPoll) to run onLost or onRevoked,
// in a goroutine dump, and describes it if both are there.
func eosEndDeadlock(stacks string) string {
	if !strings.Contains(stacks, "kgo.(*GroupTransactSession).End") || !strings.Contains(stacks, "waitAndAddRebalance") {
		return ""
	}
	return "\nDEADLOCK: the engine's loop waits in kgo.(*GroupTransactSession).End (called from engine.endTxn with the loop's " +
		"context, no deadline) for a forced heartbeat or for onLost/onRevoked to close the session's channels, while franz-go's " +
		"group goroutine waits in waitAndAddRebalance for the loop's AllowRebalance (BlockRebalanceOnPoll) before it runs them"
}

// eosStacks returns the goroutine dump of this test process.
func eosStacks() string {
	buf := make([]byte, 8<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// eosQuitDump sends SIGQUIT to a life (the Go runtime prints every
// goroutine and exits) and returns what it printed.
func (l *eosLife) quitDump() string {
	before := len(l.out.String())
	if l.cmd.Process.Signal(syscall.SIGQUIT) != nil {
		return ""
	}
	select {
	case <-l.done:
	case <-time.After(10 * time.Second):
	}
	return l.out.String()[before:]
}

// eosWaitDrainedOK is eosWaitDrained that reports a timeout instead of
// failing, so that the caller can add what it knows.
func eosWaitDrainedOK(c *cluster, group string, timeout time.Duration, alive func(), sources ...string) (bool, string) {
	deadline := time.Now().Add(timeout)
	for _, src := range sources {
		for {
			if alive != nil {
				alive()
			}
			ok, left := eosDrained(c, group, src)
			if ok {
				break
			}
			if time.Now().After(deadline) {
				return false, left
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return true, ""
}

// eosControlsDiag returns, for failure messages, the last watermark each
// upstream task announced on every partition of a repartition topic
// (read_committed, from the last 400 offsets of each partition): where a
// downstream watermark that does not move stands.
func eosControlsDiag(c *cluster, topic string) string {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	ends, err := eosEnds(ctx, c.adm, topic)
	if err != nil {
		return "\n  " + topic + ": " + err.Error()
	}
	from := make(map[int32]kgo.Offset)
	for p, end := range ends {
		from[p] = kgo.NewOffset().At(max(end-400, 0))
	}
	cl, err := c.partitionReader(topic, from)
	if err != nil {
		return "\n  " + topic + ": " + err.Error()
	}
	defer cl.Close()
	last := make(map[int32]map[string]int64)
	done := make(map[int32]bool)
	for len(done) < len(ends) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= ends[r.Partition] {
				done[r.Partition] = true
			}
			if _, ok := headerOf(r, windows.HeaderKey); !ok {
				return
			}
			ctl, err := windows.DecodeControl(r.Value)
			if err != nil {
				return
			}
			if last[r.Partition] == nil {
				last[r.Partition] = make(map[string]int64)
			}
			last[r.Partition][ctl.UpstreamTask] = ctl.Watermark
		})
	}
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(ends)) {
		fmt.Fprintf(&b, "\n  %s[%d] end %d, last control per upstream task:", topic, p, ends[p])
		for _, u := range slices.Sorted(maps.Keys(last[p])) {
			fmt.Fprintf(&b, " %s=%d", u, last[p][u])
		}
	}
	return b.String()
}

// eosCommittedSum returns the sum of group's committed offsets of topic,
// and false when they cannot be read now (a transaction holding offsets
// answers UNSTABLE_OFFSET_COMMIT).
func eosCommittedSum(c *cluster, group, topic string) (int64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	resp, err := c.adm.FetchOffsetsForTopics(ctx, group, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return 0, false
	}
	var n int64
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At > 0 {
			n += o.At
		}
	})
	return n, true
}
