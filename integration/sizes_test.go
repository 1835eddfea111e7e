package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/changelog"
	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/topology"
)

// TestOversizeRecordsGoToDLQ runs window-count over clicks mixed with four
// records no store, repartition topic or dead letter can carry whole: a
// 70 KB user (a key over Badger's 65,000-byte limit once the aggregate
// stores it), a 900 KB user, a 1,000,000-byte user (a repartition record
// over the producer's limit), and a 900 KB user field that is an object (a
// decode error whose text used to quote it). One more click carries a
// 900 KB page, which window-count drops before the repartition: it counts
// like any other.
//
// The engine keeps running; kcat, read_committed, sees exactly four dead
// letters, each cut to fit (weir.truncated, the original size and SHA-256)
// with a short reason; after they are committed the engine stops and
// another takes over on an empty state directory (a whole-changelog
// restore); every window count is exact.
func TestOversizeRecordsGoToDLQ(t *testing.T) {
	t.Parallel()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat, the independent reader, is not installed (apt-get install kcat): %v", err)
	}
	const (
		in, out = "clicks", "clicks-per-window"
		app     = "oversize"
	)
	c := newCluster(t)
	c.createTopic(in, windowsParts)
	x := startEngine(t, c, windowCount(t, in, out), app, windowEngine(t.TempDir(), 0))
	_, rep := downstreamTasks(t, x, windowsParts)

	base := alignedBase()
	cs := genClicks(71, 1600, 20, base, 60*time.Second, clickJitter, windowsParts)
	good := clickRecords(t, in, cs, "c")
	bigPage := 500
	v, err := json.Marshal(builtin.Click{User: cs[bigPage].user, Page: strings.Repeat("p", 900_000), TS: cs[bigPage].ts})
	if err != nil {
		t.Fatal(err)
	}
	good[bigPage].Value = v

	type bad struct {
		at     int      // inserted after good[at], with its partition and time
		value  []byte   // the input value
		key    []byte   // the dead letter's original key (repartitioned records: the user)
		source string   // the dead letter's source topic
		errPre string   // the reason's start
		errSub []string // and parts of it
		cut    string   // weir.truncated
	}
	user70 := strings.Repeat("a", 70_000)
	user900 := strings.Repeat("b", 900_000)
	user1M := strings.Repeat("d", 1_000_000) // fits the broker's limit in the input; not with headers in the repartition topic
	obj900 := fmt.Sprintf(`{"user":{"blob":%q},"page":"/o","ts":%d}`, strings.Repeat("c", 900_000), cs[1100].ts)
	sizeErr := []string{`store "count-store": key of `, "exceeds the limit of 65000 bytes"}
	bads := []*bad{
		{at: 300, value: fmt.Appendf(nil, `{"user":%q,"page":"/k","ts":%d}`, user70, cs[300].ts), key: []byte(user70), source: rep,
			errPre: `topology: operator "count": `, errSub: sizeErr, cut: "key"},
		{at: 700, value: fmt.Appendf(nil, `{"user":%q,"page":"/k","ts":%d}`, user900, cs[700].ts), key: []byte(user900), source: rep,
			errPre: `topology: operator "count": `, errSub: sizeErr, cut: "key"},
		{at: 900, value: fmt.Appendf(nil, `{"user":%q,"page":"/k","ts":%d}`, user1M, cs[900].ts), key: []byte("bad-1m"), source: in,
			errPre: `topology: operator "count-sink": `, errSub: []string{"record of 1000", "exceeds the limit of"}, cut: "value"},
		{at: 1100, value: []byte(obj900), key: []byte("bad-obj"), source: in,
			errPre: `topology: source "source": decode: value: serde: window-count event decode: field "user" is {"blob":"cccc`, errSub: []string{"… (900011 bytes), want a non-empty string or a number"}, cut: "value"},
	}
	var recs []*kgo.Record
	badAt := make(map[int]*bad)
	for _, b := range bads {
		badAt[b.at] = b
	}
	inRec := make(map[*bad]*kgo.Record)
	for i, r := range good {
		recs = append(recs, r)
		if b := badAt[i]; b != nil {
			br := &kgo.Record{Topic: in, Partition: cs[i].part, Key: []byte("bad-" + strconv.Itoa(i)), Value: b.value}
			if b.source == in {
				br.Key = b.key
			}
			inRec[b] = br
			recs = append(recs, br)
		}
	}
	// A Java producer's default max.request.size (1 MiB) lets a client send
	// more than franz-go's default batch limit: so does this one.
	pr, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchMaxBytes(1_040_000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pr.Close)
	firstHalf := 1200 + len(bads)
	produceWith(t, pr, recs[:firstHalf])

	// kcat, read_committed: the dead letters, cut to fit.
	var lines []string
	waitFor(t, outputTimeout, "four committed dead letters", func() bool {
		failIfExited(t, x)
		lines = kcatLines(t, kcat, c.addr, engine.DLQTopic(app), "%p\t%o\t%K\t%S\t%h\n")
		return len(lines) >= len(bads)
	})
	if len(lines) != len(bads) {
		t.Fatalf("kcat read %d dead letters, want %d:\n%s", len(lines), len(bads), strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		f := strings.SplitN(l, "\t", 5)
		klen, _ := strconv.Atoi(f[2])
		vlen, _ := strconv.Atoi(f[3])
		if len(f) != 5 || klen > topology.DeadLetterMaxKey || vlen > topology.DeadLetterMaxValue || !strings.Contains(f[4], topology.HeaderTruncated+"=") {
			t.Errorf("kcat: dead letter %.300q: want a key of at most %d bytes, a value of at most %d and a %s header", l, topology.DeadLetterMaxKey, topology.DeadLetterMaxValue, topology.HeaderTruncated)
		}
	}

	// A takeover on an empty state directory restores the whole changelog.
	x.stop(t)
	y := startEngine(t, c, windowCount(t, in, out), app, windowEngine(t.TempDir(), 0))
	final := closers(base + time.Hour.Milliseconds())
	produceWith(t, pr, recs[firstHalf:])
	produceWith(t, pr, clickRecords(t, in, final, "close"))
	want := windowOracle(cs, final[0].ts-outOfOrder)
	got := c.readOutput(app, []string{in, rep}, out, len(want))
	checkWindowResults(t, app, got, want)
	failIfExited(t, y)

	dead := eosReadCommitted(t, c, engine.DLQTopic(app), outputTimeout)
	if len(dead) != len(bads) {
		t.Fatalf("%d dead letters after the takeover, want %d", len(dead), len(bads))
	}
	hash := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	for _, b := range bads {
		var d *kgo.Record
		for _, r := range dead {
			if h := header(r, topology.HeaderOriginalKeySHA256); h == hash(b.key) {
				d = r
			}
			if h := header(r, topology.HeaderOriginalValueSHA256); h == hash(b.value) {
				d = r
			}
		}
		if d == nil {
			t.Errorf("no dead letter for the record after click %d (%d-byte value)", b.at, len(b.value))
			continue
		}
		errText := header(d, topology.HeaderError)
		ok := strings.HasPrefix(errText, b.errPre) && len(errText) <= 1024
		for _, sub := range b.errSub {
			ok = ok && strings.Contains(errText, sub)
		}
		if !ok {
			t.Errorf("dead letter for the record after click %d: reason %.400q (%d bytes), want %q…%q in at most 1 KiB", b.at, errText, len(errText), b.errPre, b.errSub)
		}
		if got := header(d, topology.HeaderTruncated); got != b.cut {
			t.Errorf("dead letter for the record after click %d: %s %q, want %q", b.at, topology.HeaderTruncated, got, b.cut)
		}
		if src := header(d, topology.HeaderSourceTopic); src != b.source {
			t.Errorf("dead letter for the record after click %d: source %q, want %q", b.at, src, b.source)
		}
		switch b.cut {
		case "key":
			if header(d, topology.HeaderOriginalKeySize) != strconv.Itoa(len(b.key)) || !bytes.Equal(d.Key, b.key[:topology.DeadLetterMaxKey]) || len(d.Value) != 0 {
				t.Errorf("dead letter for the record after click %d: key %d bytes (original %s), value %d bytes: want the user's first %d bytes and no value",
					b.at, len(d.Key), header(d, topology.HeaderOriginalKeySize), len(d.Value), topology.DeadLetterMaxKey)
			}
		case "value":
			src := inRec[b]
			if header(d, topology.HeaderOriginalValueSize) != strconv.Itoa(len(b.value)) || !bytes.Equal(d.Value, b.value[:topology.DeadLetterMaxValue]) || !bytes.Equal(d.Key, b.key) ||
				header(d, topology.HeaderSourcePartition) != strconv.Itoa(int(src.Partition)) || header(d, topology.HeaderSourceOffset) != strconv.FormatInt(src.Offset, 10) {
				t.Errorf("dead letter for the record after click %d: key %q, value %d bytes (original %s), from [%s]@%s: want the value's first %d bytes from [%d]@%d",
					b.at, d.Key, len(d.Value), header(d, topology.HeaderOriginalValueSize), header(d, topology.HeaderSourcePartition), header(d, topology.HeaderSourceOffset),
					topology.DeadLetterMaxValue, src.Partition, src.Offset)
			}
		}
	}
}

// TestRestoreSkipsOversizeChangelogRecord writes a changelog record with a
// 70 KB key (as a version that did not check sizes could have) straight
// into window-count's changelog. An engine on an empty state directory
// restores past it (logged at error level, counted in
// weir_restore_skipped_total) instead of dying, and counts exactly.
func TestRestoreSkipsOversizeChangelogRecord(t *testing.T) {
	t.Parallel()
	const (
		in, out = "clicks", "clicks-per-window"
		app     = "oversize-restore"
		parts   = windowsParts
	)
	c := newCluster(t)
	c.createTopic(in, parts)
	x := startEngine(t, c, windowCount(t, in, out), app, windowEngine(t.TempDir(), 0))
	down, rep := downstreamTasks(t, x, parts)
	waitOwnsAll(t, x, append(allTasks(0, parts), down...))
	base := alignedBase()
	cs := genClicks(73, 800, 10, base, 40*time.Second, clickJitter, parts)
	pr := manualProducer(t, c)
	produceWith(t, pr, clickRecords(t, in, cs[:400], "c"))
	c.waitCaughtUp(app, in)
	x.stop(t)

	topic := changelog.Topic(app, "count-store")
	produceWith(t, pr, []*kgo.Record{{Topic: topic, Partition: 3, Key: bytes.Repeat([]byte("z"), 70_000), Value: changelog.EncodeValue([]byte("v"))}})

	var logs syncBuffer
	y := startEngine(t, c, windowCount(t, in, out), app, func(cfg *engine.Config) {
		windowEngine(t.TempDir(), 0)(cfg)
		cfg.Logger = slogTee(cfg.Logger, &logs)
	})
	waitOwnsAll(t, y, append(allTasks(0, parts), down...))
	series := fmt.Sprintf("weir_restore_skipped_total{store=%q}", "count-store")
	if n := samples(t, y)[series]; n != 1 {
		t.Errorf("%s = %v, want 1", series, n)
	}
	if !strings.Contains(logs.String(), "skipping a changelog record the store cannot hold") || !strings.Contains(logs.String(), "key_bytes=70000") {
		t.Errorf("no error log of the skipped changelog record:\n%s", logs.String())
	}
	final := closers(base + time.Hour.Milliseconds())
	produceWith(t, pr, clickRecords(t, in, cs[400:], "c2"))
	produceWith(t, pr, clickRecords(t, in, final, "close"))
	want := windowOracle(cs, final[0].ts-outOfOrder)
	got := c.readOutput(app, []string{in, rep}, out, len(want))
	checkWindowResults(t, app, got, want)
	failIfExited(t, y)
}

// header returns the value of r's header key ("" if absent).
func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// kcatLines reads topic with kcat, read_committed, from the beginning to
// the end, one line per record in format.
func kcatLines(t *testing.T, kcat, addr, topic, format string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), outputTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", format)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, stderr.String())
	}
	var out []string
	for _, l := range strings.Split(stdout.String(), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// slogTee returns a logger that writes to l and, as text, to w.
func slogTee(l *slog.Logger, w io.Writer) *slog.Logger {
	return slog.New(slog.NewMultiHandler(l.Handler(), slog.NewTextHandler(w, nil)))
}
