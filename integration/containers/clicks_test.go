package containers

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// The window-count input of these tests (as in ../windows_test.go): the
// contract's defaults (10s tumbling windows, watermark = max event time -
// 2s, grace 0), clicks whose timestamps trail an advancing clock by less
// than 1.5s, so none is late, and idleness off in the processors. At the
// end, one far-future click per partition by a user outside the oracle
// closes every real window.
const (
	windowSize  = int64(10_000) // ms
	outOfOrder  = int64(2_000)  // ms
	clickJitter = 1500 * time.Millisecond
	closingUser = "~close"
)

// click is one window-count input event and its input partition.
type click struct {
	user string
	ts   int64
	part int32
}

// genClicks returns n clicks of users u000..u<users-1> on an event-time
// clock advancing evenly from base over span, each stamped the clock plus
// a jitter in [0, clickJitter), in a random partition. In production order
// a click is never more than the jitter older than any before it, in every
// partition: none is late, however the clicks are split into batches.
func genClicks(seed uint64, n, users int, base int64, span time.Duration) []click {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	out := make([]click, n)
	for i := range out {
		clock := base + int64(i)*span.Milliseconds()/int64(n)
		out[i] = click{
			user: fmt.Sprintf("u%03d", rng.IntN(users)),
			ts:   clock + rng.Int64N(clickJitter.Milliseconds()),
			part: rng.Int32N(partitions),
		}
	}
	return out
}

// closers returns one click per partition at ts, by a user outside the
// oracle.
func closers(ts int64) []click {
	cs := make([]click, partitions)
	for p := range cs {
		cs[p] = click{user: closingUser, ts: ts, part: int32(p)}
	}
	return cs
}

// alignedBase returns an epoch-ms event time an hour ago, on a window
// boundary.
func alignedBase() int64 {
	ms := time.Now().Add(-time.Hour).UnixMilli()
	return ms - ms%windowSize
}

// records turns clicks into input records, in order, each in its
// partition; the record key is unrelated to the user.
func records(t *testing.T, cs []click, tag string) []*kgo.Record {
	t.Helper()
	recs := make([]*kgo.Record, len(cs))
	for i, c := range cs {
		v, err := json.Marshal(builtin.Click{User: c.user, Page: fmt.Sprintf("/%s/%d", tag, i), TS: c.ts})
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: inputTopic, Partition: c.part, Key: fmt.Appendf(nil, "%s-%d", tag, i), Value: v}
	}
	return recs
}

// batches splits cs into n consecutive parts.
func batches(cs []click, n int) [][]click {
	out := make([][]click, n)
	for i := range n {
		out[i] = cs[i*len(cs)/n : (i+1)*len(cs)/n]
	}
	return out
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

// repartitionTopic is window-count's repartition topic for app.
func repartitionTopic(app string) string {
	top, err := builtin.WindowCount(builtin.DefaultWindowCount())
	if err != nil {
		panic(err)
	}
	plan, err := top.Build(app)
	if err != nil {
		panic(err)
	}
	for _, st := range plan.Subtopologies {
		for _, src := range st.Sources {
			if src.Internal {
				return src.Topic
			}
		}
	}
	panic("window-count has no repartition topic")
}

func headerOf(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// checkWindowResults checks window-count output recs of app against want:
// exactly one final result per (user, window) of want, with its count,
// headers, timestamp and a unique result id; nothing else. It reports at
// most 20 problems.
func checkWindowResults(t *testing.T, app string, recs []*kgo.Record, want map[winKey]int64) {
	t.Helper()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	seen := make(map[winKey]bool)
	ids := make(map[string]winKey)
	for _, r := range recs {
		where := fmt.Sprintf("%s[%d]@%d", r.Topic, r.Partition, r.Offset)
		var res builtin.WindowCountResult
		if err := json.Unmarshal(r.Value, &res); err != nil {
			bad("%s: value %q: %v", where, r.Value, err)
			continue
		}
		k := winKey{res.Key, res.WindowStart}
		if string(r.Key) != res.Key {
			bad("%s: record key %q, value key %q", where, r.Key, res.Key)
		}
		if res.WindowStart%windowSize != 0 || res.WindowEnd != res.WindowStart+windowSize {
			bad("%s: window [%d, %d) is not a %dms tumbling window", where, res.WindowStart, res.WindowEnd, windowSize)
		}
		if seen[k] {
			bad("%s: duplicate: a second result for user %q window %d (count %d)", where, k.user, k.start, res.Count)
		}
		seen[k] = true
		if n, ok := want[k]; !ok {
			bad("%s: unexpected result for user %q window [%d, %d) count %d", where, k.user, res.WindowStart, res.WindowEnd, res.Count)
		} else if res.Count != n {
			bad("%s: user %q window [%d, %d): count %d, want %d", where, k.user, res.WindowStart, res.WindowEnd, res.Count, n)
		}
		wantH := map[string]string{
			windows.HeaderWindowStart: strconv.FormatInt(res.WindowStart, 10),
			windows.HeaderWindowEnd:   strconv.FormatInt(res.WindowEnd, 10),
			windows.HeaderFinal:       "true",
			windows.HeaderResultID:    windows.ResultID(app, "count", r.Key, windows.Window{Start: res.WindowStart, End: res.WindowEnd}),
		}
		for h, v := range wantH {
			if got, ok := headerOf(r, h); !ok || got != v {
				bad("%s: header %s = %q (present %v), want %q", where, h, got, ok, v)
			}
		}
		id, _ := headerOf(r, windows.HeaderResultID)
		if prev, dup := ids[id]; dup {
			bad("%s: result id %s also names %v", where, id, prev)
		}
		ids[id] = k
		if ts := r.Timestamp.UnixMilli(); ts != res.WindowEnd-1 {
			bad("%s: timestamp %d, want the window's last instant %d", where, ts, res.WindowEnd-1)
		}
	}
	missing := 0
	for k, n := range want {
		if !seen[k] {
			missing++
			if missing <= 5 {
				bad("lost: no result for user %q window %d (count %d)", k.user, k.start, n)
			}
		}
	}
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("... and %d more", len(problems)-20))
		}
		t.Errorf("%s: %d results, want %d (%d lost):\n%s", outputTopic, len(recs), len(want), missing, strings.Join(problems, "\n"))
	}
}

// checkNothingLate checks that the late-data and dead-letter topics are
// empty: no click was later than the bound, none was malformed.
func (s *stack) checkNothingLate() {
	t := s.t
	t.Helper()
	for _, topic := range []string{topology.LateTopic(s.app), engine.DLQTopic(s.app)} {
		ends, err := s.endOffsets(topic)
		if err != nil {
			continue // never created: nothing went there
		}
		var n int64
		for _, e := range ends {
			n += e
		}
		if n != 0 {
			t.Errorf("%s has %d offsets, want none", topic, n)
		}
	}
}

// decodeResult decodes a window-count output value.
func decodeResult(b []byte) (builtin.WindowCountResult, bool) {
	var res builtin.WindowCountResult
	err := json.Unmarshal(b, &res)
	return res, err == nil
}

func readAllString(r io.Reader) (string, error) {
	b, err := io.ReadAll(r)
	return string(b), err
}
