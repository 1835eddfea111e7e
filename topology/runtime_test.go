package topology_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// fakeEnv is a task environment that records what the task produces, knows
// fixed partition counts and keeps one MemStore per store name.
type fakeEnv struct {
	produced   []*kgo.Record
	parts      map[string]int32
	stores     map[string]*state.MemStore
	produceErr error
}

func newFakeEnv(parts map[string]int32) *fakeEnv {
	return &fakeEnv{parts: parts, stores: make(map[string]*state.MemStore)}
}

func (f *fakeEnv) taskEnv(appID string, id topology.TaskID) topology.TaskEnv {
	return topology.TaskEnv{
		AppID: appID,
		Task:  id,
		Produce: func(r *kgo.Record) error {
			if f.produceErr != nil {
				return f.produceErr
			}
			f.produced = append(f.produced, r)
			return nil
		},
		Partitions: func(topic string) (int32, error) {
			n, ok := f.parts[topic]
			if !ok {
				return 0, fmt.Errorf("fake: unknown topic %q", topic)
			}
			return n, nil
		},
		Store: func(name string) (state.Store, error) {
			s, ok := f.stores[name]
			if !ok {
				s = state.NewMemStore()
				f.stores[name] = s
			}
			return s, nil
		},
		Now:    func() time.Time { return time.UnixMilli(1_700_000_000_000) },
		Logger: slog.New(slog.DiscardHandler),
	}
}

// newTask builds the program with app id "app" and returns sub-topology
// sub's task for partition.
func newTask(t *testing.T, program func(*topology.Topology), sub int, partition int32, env *fakeEnv) *topology.Task {
	t.Helper()
	p := mustBuild(t, program, "app")
	if sub >= len(p.Subtopologies) {
		t.Fatalf("plan has %d sub-topologies, want at least %d:\n%s", len(p.Subtopologies), sub+1, p)
	}
	id := topology.TaskID{Subtopology: sub, Partition: partition}
	task, err := p.Subtopologies[sub].NewTask(env.taskEnv("app", id))
	if err != nil {
		t.Fatalf("NewTask(%s): %v", id, err)
	}
	if task.ID != id {
		t.Errorf("task.ID = %s, want %s", task.ID, id)
	}
	return task
}

// out is the part of a produced record the tests compare.
type out struct {
	Topic     string
	Partition int32
	Key       string
	NilKey    bool
	Value     string
	Timestamp int64
	Headers   []kgo.RecordHeader
}

func (o out) String() string {
	k := fmt.Sprintf("%q", o.Key)
	if o.NilKey {
		k = "nil"
	}
	return fmt.Sprintf("{%s/%d key=%s value=%q ts=%d headers=%v}", o.Topic, o.Partition, k, o.Value, o.Timestamp, o.Headers)
}

func outs(recs []*kgo.Record) []out {
	var res []out
	for _, r := range recs {
		res = append(res, out{
			Topic:     r.Topic,
			Partition: r.Partition,
			Key:       string(r.Key),
			NilKey:    r.Key == nil,
			Value:     string(r.Value),
			Timestamp: r.Timestamp.UnixMilli(),
			Headers:   r.Headers,
		})
	}
	return res
}

func assertOuts(t *testing.T, got []*kgo.Record, want []out) {
	t.Helper()
	g := outs(got)
	if !reflect.DeepEqual(g, want) {
		t.Errorf("produced:\n%s\nwant:\n%s", fmtOuts(g), fmtOuts(want))
	}
}

func fmtOuts(res []out) string {
	var b strings.Builder
	for _, o := range res {
		b.WriteString("  " + o.String() + "\n")
	}
	if len(res) == 0 {
		b.WriteString("  (none)\n")
	}
	return b.String()
}

func in(topic string, offset int64, key, value string, ts int64, hdrs ...kgo.RecordHeader) *kgo.Record {
	return &kgo.Record{Topic: topic, Offset: offset, Key: []byte(key), Value: []byte(value), Timestamp: time.UnixMilli(ts), Headers: hdrs}
}

func i64(n int64) string {
	b, _ := serde.Int64().Encode(n)
	return string(b)
}

var hdr = kgo.RecordHeader{Key: "trace", Value: []byte("t-1")}

// origin returns the origin header a repartition sink appends for an
// input record.
func origin(topic string, partition int32, offset int64) []kgo.RecordHeader {
	return []kgo.RecordHeader{{Key: topology.HeaderOrigin, Value: fmt.Appendf(nil, "%s/%d@%d", topic, partition, offset)}}
}

// TestStatelessOperators runs single-sub-topology programs over input
// records and compares everything they produce. Every output topic has one
// partition here; partitioning has its own tests.
func TestStatelessOperators(t *testing.T) {
	str := serde.String()
	var peeked []string
	for _, tc := range []struct {
		name    string
		program func(*topology.Topology)
		in      []*kgo.Record
		want    []out
		check   func(t *testing.T)
	}{
		{
			name: "map changes key and value types",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				m := topology.Map(s, func(k, v string) (string, int64, error) { return strings.ToUpper(v), int64(len(k)), nil })
				topology.To(topology.WithSerdes(m, str, serde.Int64()), "out")
			},
			in: []*kgo.Record{
				in("in", 0, "ab", "xy", 1000, hdr),
				in("in", 1, "", "z", 1001),
			},
			want: []out{
				{Topic: "out", Key: "XY", Value: i64(2), Timestamp: 1000, Headers: []kgo.RecordHeader{hdr}},
				{Topic: "out", Key: "Z", Value: i64(0), Timestamp: 1001},
			},
		},
		{
			name:    "filter then map-values",
			program: stateless,
			in: []*kgo.Record{
				in("in", 0, "a", "hello", 5, hdr),
				in("in", 1, "b", "", 6),
				in("in", 2, "c", "hi", 7),
			},
			want: []out{
				{Topic: "out", Key: "a", Value: i64(5), Timestamp: 5, Headers: []kgo.RecordHeader{hdr}},
				{Topic: "out", Key: "c", Value: i64(2), Timestamp: 7},
			},
		},
		{
			name: "flat-map emits zero or more",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				fm := topology.FlatMap(s, func(k, v string, emit func(string, string)) error {
					for _, part := range strings.Split(v, ",") {
						if part != "" {
							emit(k+"/"+part, part)
						}
					}
					return nil
				})
				topology.To(topology.WithSerdes(fm, str, str), "out")
			},
			in: []*kgo.Record{
				in("in", 0, "a", "x,y,z", 10, hdr),
				in("in", 1, "b", "", 11),
				in("in", 2, "c", "w", 12),
			},
			want: []out{
				{Topic: "out", Key: "a/x", Value: "x", Timestamp: 10, Headers: []kgo.RecordHeader{hdr}},
				{Topic: "out", Key: "a/y", Value: "y", Timestamp: 10, Headers: []kgo.RecordHeader{hdr}},
				{Topic: "out", Key: "a/z", Value: "z", Timestamp: 10, Headers: []kgo.RecordHeader{hdr}},
				{Topic: "out", Key: "c/w", Value: "w", Timestamp: 12},
			},
		},
		{
			name: "branch sends each record to the first match or the default",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				bs := topology.Branch(s, []func(_, _ string) bool{
					func(_, v string) bool { return strings.HasPrefix(v, "1") },
					func(_, v string) bool { return strings.Contains(v, "2") },
				})
				topology.To(bs[0], "one")
				topology.To(bs[1], "two")
				topology.To(bs[2], "other")
			},
			in: []*kgo.Record{
				in("in", 0, "a", "1a", 1),
				in("in", 1, "b", "2b", 2),
				in("in", 2, "c", "3c", 3),
				in("in", 3, "d", "12", 4), // matches both: the first wins
			},
			want: []out{
				{Topic: "one", Key: "a", Value: "1a", Timestamp: 1},
				{Topic: "two", Key: "b", Value: "2b", Timestamp: 2},
				{Topic: "other", Key: "c", Value: "3c", Timestamp: 3},
				{Topic: "one", Key: "d", Value: "12", Timestamp: 4},
			},
		},
		{
			name: "merge of two sources",
			program: func(t *topology.Topology) {
				a := topology.Source(t, "in", str, str)
				b := topology.Source(t, "in2", str, str)
				topology.To(topology.Merge(a, []topology.Stream[string, string]{b}), "out")
			},
			in: []*kgo.Record{
				in("in", 0, "a", "1", 1),
				in("in2", 0, "b", "2", 2),
				in("in", 1, "c", "3", 3),
			},
			want: []out{
				{Topic: "out", Key: "a", Value: "1", Timestamp: 1},
				{Topic: "out", Key: "b", Value: "2", Timestamp: 2},
				{Topic: "out", Key: "c", Value: "3", Timestamp: 3},
			},
		},
		{
			name: "merge of two branches of one stream",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				x := topology.MapValues(s, func(_, v string) (string, error) { return v + "-x", nil })
				y := topology.MapValues(s, func(_, v string) (string, error) { return v + "-y", nil })
				m := topology.Merge(x, []topology.Stream[string, string]{y})
				topology.To(topology.WithSerdes(m, str, str), "out")
			},
			in: []*kgo.Record{in("in", 0, "a", "v", 1)},
			want: []out{
				{Topic: "out", Key: "a", Value: "v-x", Timestamp: 1},
				{Topic: "out", Key: "a", Value: "v-y", Timestamp: 1},
			},
		},
		{
			name: "peek sees each record and passes it on",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				p := topology.Peek(s, func(k, v string) { peeked = append(peeked, k+"="+v) })
				topology.To(p, "out")
			},
			in: []*kgo.Record{
				in("in", 0, "a", "1", 1, hdr),
				in("in", 1, "b", "2", 2),
			},
			want: []out{
				{Topic: "out", Key: "a", Value: "1", Timestamp: 1, Headers: []kgo.RecordHeader{hdr}},
				{Topic: "out", Key: "b", Value: "2", Timestamp: 2},
			},
			check: func(t *testing.T) {
				if want := []string{"a=1", "b=2"}; !reflect.DeepEqual(peeked, want) {
					t.Errorf("peeked %q, want %q", peeked, want)
				}
			},
		},
		{
			name: "one stream to two sinks",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				topology.To(s, "out")
				topology.To(s, "out2")
			},
			in: []*kgo.Record{in("in", 0, "a", "1", 1)},
			want: []out{
				{Topic: "out", Key: "a", Value: "1", Timestamp: 1},
				{Topic: "out2", Key: "a", Value: "1", Timestamp: 1},
			},
		},
		{
			name: "select-key without a keyed operation does not repartition",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				topology.To(topology.SelectKey(s, func(k, v string) (string, error) { return v + k, nil }, str), "out")
			},
			in:   []*kgo.Record{in("in", 0, "a", "b", 9)},
			want: []out{{Topic: "out", Key: "ba", Value: "b", Timestamp: 9}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peeked = nil
			env := newFakeEnv(map[string]int32{"out": 1, "out2": 1, "one": 1, "two": 1, "other": 1})
			task := newTask(t, tc.program, 0, 0, env)
			for _, r := range tc.in {
				if err := task.Process(r); err != nil {
					t.Fatalf("Process(%s@%d): %v", r.Topic, r.Offset, err)
				}
			}
			assertOuts(t, env.produced, tc.want)
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

func TestCountEmitsRunningCounts(t *testing.T) {
	str := serde.String()
	program := func(t *topology.Topology) {
		s := topology.Source(t, "in", str, str)
		topology.To(topology.Count(s, topology.Named("counts")), "out")
	}
	env := newFakeEnv(map[string]int32{"out": 1})
	task := newTask(t, program, 0, 0, env)
	var want []out
	for i, tc := range []struct {
		key  string
		want int64
	}{
		{"a", 1}, {"b", 1}, {"a", 2}, {"a", 3}, {"c", 1}, {"b", 2}, {"", 1}, {"", 2},
	} {
		ts := int64(100 + i)
		if err := task.Process(in("in", int64(i), tc.key, "v", ts, hdr)); err != nil {
			t.Fatalf("Process #%d: %v", i, err)
		}
		want = append(want, out{Topic: "out", Key: tc.key, Value: i64(tc.want), Timestamp: ts, Headers: []kgo.RecordHeader{hdr}})
	}
	assertOuts(t, env.produced, want)

	if len(env.stores) != 1 {
		t.Fatalf("stores opened: %v, want only counts-store", env.stores)
	}
	st := env.stores["counts-store"]
	if st == nil {
		t.Fatal("counts-store was never opened")
	}
	for key, n := range map[string]int64{"a": 3, "b": 2, "c": 1, "": 2} {
		got, err := st.Get([]byte(key))
		if err != nil {
			t.Errorf("store Get(%q): %v", key, err)
			continue
		}
		if string(got) != i64(n) {
			t.Errorf("store[%q] = %x, want %x", key, got, i64(n))
		}
	}
	if st.Len() != 4 {
		t.Errorf("store has %d keys, want 4", st.Len())
	}
}

func TestCountResumesFromStoredState(t *testing.T) {
	str := serde.String()
	program := func(t *topology.Topology) {
		topology.To(topology.Count(topology.Source(t, "in", str, str), topology.Named("counts")), "out")
	}
	env := newFakeEnv(map[string]int32{"out": 1})
	st := state.NewMemStore()
	if err := st.Put([]byte("a"), []byte(i64(41))); err != nil {
		t.Fatal(err)
	}
	env.stores["counts-store"] = st
	task := newTask(t, program, 0, 0, env)
	if err := task.Process(in("in", 0, "a", "v", 1)); err != nil {
		t.Fatal(err)
	}
	assertOuts(t, env.produced, []out{{Topic: "out", Key: "a", Value: i64(42), Timestamp: 1}})

	// A corrupt stored count is an operator error, not a silent reset.
	if err := st.Put([]byte("b"), []byte("xyz")); err != nil {
		t.Fatal(err)
	}
	err := task.Process(in("in", 1, "b", "v", 2))
	var oe *topology.OperatorError
	if !errors.As(err, &oe) || oe.Operator != "counts" {
		t.Fatalf("Process with a corrupt count: %v, want *OperatorError for %q", err, "counts")
	}
	var de *serde.DecodeError
	if !errors.As(err, &de) {
		t.Errorf("error %v does not wrap the *serde.DecodeError", err)
	}
	if len(env.produced) != 1 {
		t.Errorf("produced %d records after the failure, want 1", len(env.produced))
	}
}

// kafkaPartition is the partition Kafka's Java DefaultPartitioner picks for
// a key whose murmur2 hash (as Java's Utils.murmur2 returns it) is h.
func kafkaPartition(h int32, n int) int32 {
	return int32(int(uint32(h)&0x7fffffff) % n)
}

// javaMurmur2 are murmur2 values from Kafka's UtilsTest.testMurmur2: they
// pin partitioning to what Java producers do, independently of franz-go.
var javaMurmur2 = []struct {
	key  string
	hash int32
}{
	{"21", -973932308},
	{"foobar", -790332482},
	{"a-little-bit-long-string", -985981536},
	{"a-little-bit-longer-string", -1486304829},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
	{"abc", 479470107},
}

func TestSinkPartitioning(t *testing.T) {
	bs := serde.Bytes()
	for _, tc := range []struct {
		name  string
		topic string // the topic the sink writes, from sub-topology 0
		prog  func(*topology.Topology)
	}{
		{
			name:  "to",
			topic: "out",
			prog: func(t *topology.Topology) {
				topology.To(topology.Source(t, "in", bs, bs), "out")
			},
		},
		{
			name:  "repartition",
			topic: "app-rp-repartition",
			prog: func(t *topology.Topology) {
				s := topology.Source(t, "in", bs, bs)
				topology.To(topology.Repartition(s, topology.Named("rp")), "out")
			},
		},
		{
			name:  "implicit repartition before count",
			topic: "app-c-repartition",
			prog: func(t *topology.Topology) {
				s := topology.Source(t, "in", bs, bs)
				k := topology.SelectKey(s, func(k, _ []byte) ([]byte, error) { return k, nil }, bs)
				topology.To(topology.Count(k, topology.Named("c")), "out")
			},
		},
	} {
		for _, n := range []int32{1, 3, 8, 100} {
			t.Run(fmt.Sprintf("%s/%d partitions", tc.name, n), func(t *testing.T) {
				env := newFakeEnv(map[string]int32{tc.topic: n, "out": n})
				const taskPartition = 2
				task := newTask(t, tc.prog, 0, taskPartition, env)
				part := kgo.StickyKeyPartitioner(nil).ForTopic(tc.topic)
				var want []out
				for i, m := range javaMurmur2 {
					if err := task.Process(in("in", int64(i), m.key, "v", 7)); err != nil {
						t.Fatal(err)
					}
					p := kafkaPartition(m.hash, int(n))
					if kp := part.Partition(&kgo.Record{Key: []byte(m.key)}, int(n)); int32(kp) != p {
						t.Fatalf("test oracle: kgo puts %q in %d, Java in %d", m.key, kp, p)
					}
					w := out{Topic: tc.topic, Partition: p, Key: m.key, Value: "v", Timestamp: 7}
					if tc.topic != "out" { // a repartition topic: the input record is the origin
						w.Headers = origin("in", 0, int64(i))
					}
					want = append(want, w)
				}
				assertOuts(t, env.produced, want)

				// Records without a key stick to a partition for
				// StickyBytes, starting at the task's, then move to
				// the next: with 1 KiB values, 16 records each, and
				// every partition twice over 2n runs.
				env.produced = nil
				const perPartition = topology.StickyBytes / 1024
				value := bytes.Repeat([]byte("v"), 1024)
				for i := range 2 * n * perPartition {
					r := &kgo.Record{Topic: "in", Offset: int64(i), Value: value, Timestamp: time.UnixMilli(7)}
					if err := task.Process(r); err != nil {
						t.Fatal(err)
					}
				}
				if got, want := len(env.produced), int(2*n*perPartition); got != want {
					t.Fatalf("produced %d records, want %d", got, want)
				}
				seen := make(map[int32]int)
				for i, r := range env.produced {
					if r.Key != nil || r.Topic != tc.topic {
						t.Fatalf("record %d: %s key %q, want %s nil key", i, r.Topic, r.Key, tc.topic)
					}
					seen[r.Partition]++
					if want := (taskPartition + int32(i/perPartition)) % n; r.Partition != want {
						t.Errorf("nil-key record %d went to partition %d, want %d", i, r.Partition, want)
					}
				}
				for p := range n {
					if seen[p] != 2*perPartition {
						t.Errorf("partition %d got %d of %d nil-key records, want %d", p, seen[p], len(env.produced), 2*perPartition)
					}
				}
			})
		}
	}
}

// TestRepartitionEndToEnd runs Source -> SelectKey -> Count -> To over
// both sub-topologies, routing each repartition record to the task of its
// partition, as the engine would.
func TestRepartitionEndToEnd(t *testing.T) {
	const parts = 3
	p := mustBuild(t, rekeyedCount("counts"), "app")
	const topic = "app-counts-repartition"

	upEnv := newFakeEnv(map[string]int32{topic: parts})
	up, err := p.Subtopologies[0].NewTask(upEnv.taskEnv("app", topology.TaskID{Subtopology: 0, Partition: 0}))
	if err != nil {
		t.Fatal(err)
	}
	// Each downstream task has its own environment and stores.
	downEnv := make([]*fakeEnv, parts)
	down := make([]*topology.Task, parts)
	for i := range down {
		downEnv[i] = newFakeEnv(map[string]int32{"out": 1, topic: parts})
		down[i], err = p.Subtopologies[1].NewTask(downEnv[i].taskEnv("app", topology.TaskID{Subtopology: 1, Partition: int32(i)}))
		if err != nil {
			t.Fatal(err)
		}
		if got := down[i].Topics(); !reflect.DeepEqual(got, []string{topic}) {
			t.Fatalf("downstream task reads %q, want [%q]", got, topic)
		}
	}

	values := []string{"x", "y", "x", "z", "x", "y"}
	wantCounts := []int64{1, 1, 2, 1, 3, 2}
	part := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	var wantUp, wantDown []out
	var gotDown []*kgo.Record
	for i, v := range values {
		ts := int64(1000 + i)
		if err := up.Process(in("in", int64(i), fmt.Sprintf("k%d", i), v, ts, hdr)); err != nil {
			t.Fatalf("upstream Process #%d: %v", i, err)
		}
		pt := int32(part.Partition(&kgo.Record{Key: []byte(v)}, parts))
		wantUp = append(wantUp, out{Topic: topic, Partition: pt, Key: v, Value: v, Timestamp: ts, Headers: append([]kgo.RecordHeader{hdr}, origin("in", 0, int64(i))...)})
		wantDown = append(wantDown, out{Topic: "out", Key: v, Value: i64(wantCounts[i]), Timestamp: ts, Headers: []kgo.RecordHeader{hdr}})

		// Deliver the record the upstream task just produced.
		rec := upEnv.produced[len(upEnv.produced)-1]
		rec.Offset = int64(i)
		d := downEnv[rec.Partition]
		before := len(d.produced)
		if err := down[rec.Partition].Process(rec); err != nil {
			t.Fatalf("downstream Process #%d: %v", i, err)
		}
		gotDown = append(gotDown, d.produced[before:]...)
	}
	assertOuts(t, upEnv.produced, wantUp)
	assertOuts(t, gotDown, wantDown)

	// Each key's count lives only in the store of the task that owns the
	// key's partition.
	final := map[string]int64{"x": 3, "y": 2, "z": 1}
	for k, n := range final {
		owner := part.Partition(&kgo.Record{Key: []byte(k)}, parts)
		for i, e := range downEnv {
			st := e.stores["counts-store"]
			if st == nil {
				t.Fatalf("task 1_%d never opened counts-store", i)
			}
			got, err := st.Get([]byte(k))
			switch {
			case i == owner && (err != nil || string(got) != i64(n)):
				t.Errorf("task 1_%d: store[%q] = %x, %v; want %x", i, k, got, err, i64(n))
			case i != owner && !errors.Is(err, state.ErrNotFound):
				t.Errorf("task 1_%d holds key %q, which belongs to partition %d", i, k, owner)
			}
		}
	}
}

func TestSourceDecodeError(t *testing.T) {
	type event struct {
		N int `json:"n"`
	}
	for _, tc := range []struct {
		name    string
		program func(*topology.Topology)
		sub     int
		rec     *kgo.Record
		wantOp  string
		wantMsg string
	}{
		{
			name: "bad json value",
			program: func(t *topology.Topology) {
				topology.To(topology.Source(t, "in", serde.String(), serde.JSON[event]()), "out")
			},
			rec:     in("in", 0, "k", `{"n":`, 1),
			wantOp:  "source-in",
			wantMsg: `topology: source "source-in": decode: value: serde: json decode: `,
		},
		{
			name: "json value of the wrong type",
			program: func(t *topology.Topology) {
				topology.To(topology.Source(t, "in", serde.String(), serde.JSON[event]()), "out")
			},
			rec:     in("in", 0, "k", `{"n":"one"}`, 1),
			wantOp:  "source-in",
			wantMsg: `decode: value: serde: json decode: `,
		},
		{
			name: "bad int64 key",
			program: func(t *topology.Topology) {
				topology.To(topology.Source(t, "in", serde.Int64(), serde.String(), topology.Named("src")), "out")
			},
			rec:     in("in", 0, "short", "v", 1),
			wantOp:  "src",
			wantMsg: `topology: source "src": decode: key: serde: int64 decode: want 8 bytes, got 5`,
		},
		{
			name: "bad record on a repartition topic",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", serde.String(), serde.String())
				k := topology.SelectKey(s, func(_, v string) (int64, error) { return int64(len(v)), nil }, serde.Int64())
				topology.To(topology.Count(k, topology.Named("c")), "out")
			},
			sub:     1,
			rec:     in("app-c-repartition", 0, "1234567", "v", 1),
			wantOp:  "c-source",
			wantMsg: `topology: source "c-source": decode: key: serde: int64 decode: want 8 bytes, got 7`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newFakeEnv(map[string]int32{"out": 1, "app-c-repartition": 1})
			task := newTask(t, tc.program, tc.sub, 0, env)
			err := task.Process(tc.rec)
			var se *topology.SourceError
			if !errors.As(err, &se) {
				t.Fatalf("Process = %v (%T), want *topology.SourceError", err, err)
			}
			if se.Operator != tc.wantOp {
				t.Errorf("SourceError.Operator = %q, want %q", se.Operator, tc.wantOp)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tc.wantMsg)
			}
			var de *serde.DecodeError
			if !errors.As(err, &de) {
				t.Errorf("error %v does not wrap a *serde.DecodeError", err)
			}
			var oe *topology.OperatorError
			if errors.As(err, &oe) {
				t.Errorf("a decode failure is also an *OperatorError: %v", err)
			}
			if len(env.produced) != 0 {
				t.Errorf("produced %d records for an undecodable input", len(env.produced))
			}
		})
	}
}

func TestOperatorError(t *testing.T) {
	str := serde.String()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		program func(*topology.Topology)
		wantOp  string
		// wantSource: the failure is bad input (*SourceError), not a
		// failing operator.
		wantSource bool
		// wantOut is what reaches the sink before the failure.
		wantOut []out
	}{
		{
			name: "map",
			program: func(t *topology.Topology) {
				m := topology.Map(topology.Source(t, "in", str, str), func(k, v string) (string, string, error) { return "", "", boom })
				topology.To(topology.WithSerdes(m, str, str), "out")
			},
			wantOp: "map-1",
		},
		{
			name: "named map-values",
			program: func(t *topology.Topology) {
				m := topology.MapValues(topology.Source(t, "in", str, str), func(k, v string) (string, error) { return "", boom }, topology.Named("enrich"))
				topology.To(topology.WithSerdes(m, str, str), "out")
			},
			wantOp: "enrich",
		},
		{
			name: "select-key",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				topology.To(topology.SelectKey(s, func(k, v string) (string, error) { return "", boom }, str, topology.Named("rekey")), "out")
			},
			wantOp: "rekey",
		},
		{
			name: "flat-map after emitting",
			program: func(t *topology.Topology) {
				fm := topology.FlatMap(topology.Source(t, "in", str, str), func(k, v string, emit func(string, string)) error {
					emit(k, "first")
					return boom
				}, topology.Named("split"))
				topology.To(topology.WithSerdes(fm, str, str), "out")
			},
			wantOp:  "split",
			wantOut: []out{{Topic: "out", Key: "k", Value: "first", Timestamp: 3}},
		},
		{
			name: "process",
			program: func(t *topology.Topology) {
				p := topology.Process(topology.Source(t, "in", str, str), func(*topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
					return func(_ *topology.Context, _ topology.Record[string, string], _ func(topology.Record[string, string]) error) error {
						return boom
					}, nil
				}, topology.Named("proc"))
				topology.To(topology.WithSerdes(p, str, str), "out")
			},
			wantOp: "proc",
		},
		{
			name: "error downstream of process keeps its own name",
			program: func(t *topology.Topology) {
				p := topology.Process(topology.Source(t, "in", str, str), func(*topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
					return func(_ *topology.Context, r topology.Record[string, string], out func(topology.Record[string, string]) error) error {
						return out(r)
					}, nil
				}, topology.Named("proc"))
				m := topology.MapValues(p, func(_, _ string) (string, error) { return "", boom }, topology.Named("after"))
				topology.To(topology.WithSerdes(m, str, str), "out")
			},
			wantOp: "after",
		},
		{
			name: "timestamp extractor",
			program: func(t *topology.Topology) {
				ts := topology.WithTimestamps(func(_, _ string, _ int64) (int64, error) { return 0, boom })
				topology.To(topology.Source(t, "in", str, str, ts), "out")
			},
			wantOp:     "source-in",
			wantSource: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newFakeEnv(map[string]int32{"out": 1})
			task := newTask(t, tc.program, 0, 0, env)
			err := task.Process(in("in", 0, "k", "v", 3))
			if !errors.Is(err, boom) {
				t.Fatalf("Process = %v, want an error wrapping boom", err)
			}
			var oe *topology.OperatorError
			var se *topology.SourceError
			isOp, isSrc := errors.As(err, &oe), errors.As(err, &se)
			switch {
			case tc.wantSource:
				if !isSrc || isOp {
					t.Fatalf("Process = %v (%T), want only a *topology.SourceError", err, err)
				}
				if se.Operator != tc.wantOp {
					t.Errorf("SourceError.Operator = %q, want %q", se.Operator, tc.wantOp)
				}
			default:
				if !isOp || isSrc {
					t.Fatalf("Process = %v (%T), want only a *topology.OperatorError", err, err)
				}
				if oe.Operator != tc.wantOp {
					t.Errorf("OperatorError.Operator = %q, want %q", oe.Operator, tc.wantOp)
				}
				if want := fmt.Sprintf("topology: operator %q: boom", tc.wantOp); err.Error() != want {
					t.Errorf("error %q, want %q", err, want)
				}
			}
			assertOuts(t, env.produced, tc.wantOut)
		})
	}
}

func TestTimestampExtractor(t *testing.T) {
	str := serde.String()
	type event struct {
		At int64 `json:"at"`
	}
	program := func(t *topology.Topology) {
		ts := topology.WithTimestamps(func(_ string, v event, kafkaTS int64) (int64, error) {
			if v.At == 0 {
				return kafkaTS, nil
			}
			return v.At, nil
		})
		s := topology.Source(t, "in", str, serde.JSON[event](), ts)
		topology.To(s, "out")
	}
	env := newFakeEnv(map[string]int32{"out": 1})
	task := newTask(t, program, 0, 0, env)
	for i, r := range []*kgo.Record{
		in("in", 0, "a", `{"at":1234567}`, 99),
		in("in", 1, "b", `{}`, 98),
	} {
		if err := task.Process(r); err != nil {
			t.Fatalf("Process #%d: %v", i, err)
		}
	}
	assertOuts(t, env.produced, []out{
		{Topic: "out", Key: "a", Value: `{"at":1234567}`, Timestamp: 1234567},
		{Topic: "out", Key: "b", Value: `{"at":0}`, Timestamp: 98},
	})
}

func TestContextInProcess(t *testing.T) {
	str := serde.String()
	type seen struct {
		app       string
		task      topology.TaskID
		topic     string
		partition int32
		offset    int64
		now       int64
	}
	var got []seen
	program := func(t *topology.Topology) {
		topology.Process(topology.Source(t, "in", str, str), func(*topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
			return func(ctx *topology.Context, _ topology.Record[string, string], _ func(topology.Record[string, string]) error) error {
				got = append(got, seen{ctx.AppID(), ctx.TaskID(), ctx.Topic(), ctx.Partition(), ctx.Offset(), ctx.ProcessingTime().UnixMilli()})
				return nil
			}, nil
		})
	}
	env := newFakeEnv(nil)
	task := newTask(t, program, 0, 4, env)
	r := in("in", 17, "k", "v", 1)
	r.Partition = 4
	if err := task.Process(r); err != nil {
		t.Fatal(err)
	}
	want := []seen{{"app", topology.TaskID{Subtopology: 0, Partition: 4}, "in", 4, 17, 1_700_000_000_000}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("context = %+v, want %+v", got, want)
	}
}

func TestNewTaskErrors(t *testing.T) {
	str := serde.String()
	openErr := errors.New("open failed")
	for _, tc := range []struct {
		name    string
		program func(*topology.Topology)
		parts   map[string]int32
		want    string
		wantIs  error
	}{
		{
			name: "undeclared store",
			program: func(t *topology.Topology) {
				topology.Process(topology.Source(t, "in", str, str), func(ctx *topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
					_, err := ctx.Store("undeclared")
					return nil, err
				}, topology.Named("p"))
			},
			want: `topology: operator "p": open: topology: task 0_0: store "undeclared" is not declared in this sub-topology: add Stores("undeclared") to its operator`,
		},
		{
			name: "factory error",
			program: func(t *topology.Topology) {
				topology.Process(topology.Source(t, "in", str, str), func(*topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
					return nil, openErr
				}, topology.Named("p"))
			},
			want:   `topology: operator "p": open: open failed`,
			wantIs: openErr,
		},
		{
			name: "unknown partition count",
			program: func(t *topology.Topology) {
				topology.To(topology.Source(t, "in", str, str), "nowhere")
			},
			parts: map[string]int32{},
			want:  `topology: task 0_0: sink "nowhere": fake: unknown topic "nowhere"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustBuild(t, tc.program, "app")
			env := newFakeEnv(tc.parts)
			task, err := p.Subtopologies[0].NewTask(env.taskEnv("app", topology.TaskID{}))
			if err == nil {
				t.Fatalf("NewTask succeeded (%v), want an error", task)
			}
			if err.Error() != tc.want {
				t.Errorf("NewTask error:\n got %q\nwant %q", err, tc.want)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.wantIs)
			}
		})
	}
}

func TestProcessErrors(t *testing.T) {
	str := serde.String()
	env := newFakeEnv(map[string]int32{"out": 1})
	task := newTask(t, func(t *topology.Topology) { topology.To(topology.Source(t, "in", str, str), "out") }, 0, 0, env)

	err := task.Process(in("other", 0, "k", "v", 1))
	if err == nil || err.Error() != `topology: task 0_0 does not read topic "other"` {
		t.Errorf("Process on an unread topic = %v", err)
	}

	full := errors.New("buffer full")
	env.produceErr = full
	if err := task.Process(in("in", 0, "k", "v", 1)); !errors.Is(err, full) {
		t.Errorf("Process with a failing Produce = %v, want %v", err, full)
	}
}

// TestCombineEmitsAtEveryAdvance: Combine holds the records of a batch,
// one per key and slice, and a single Advance (which precedes every
// checkpoint) emits all of them, with the latest event time of each; an
// error downstream of one does not keep the others, or the task's other
// operators, from their Advance.
func TestCombineEmitsAtEveryAdvance(t *testing.T) {
	tum, err := windows.Tumbling(10 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	env := newFakeEnv(map[string]int32{"app-sum-repartition": 1, "out": 1})
	task := newTask(t, func(top *topology.Topology) {
		s := topology.Source(top, "in", serde.String(), serde.String())
		ones := topology.WithSerdes(topology.Map(s, func(_, v string) (string, int64, error) { return v, 1, nil }), serde.String(), serde.Int64())
		c := topology.Combine(ones, tum, windows.Sum[int64](), topology.Named("pre"))
		checked := topology.MapValues(c, func(k string, n int64) (int64, error) {
			if k == "bad" {
				return 0, errors.New("bad key")
			}
			return n, nil
		})
		topology.To(topology.WithSerdes(checked, serde.String(), serde.Int64()), "out")
	}, 0, 0, env)
	for i, r := range []struct {
		v  string
		ts int64
	}{{"a", 1}, {"b", 2}, {"a", 5}, {"bad", 6}, {"a", 12}, {"a", 3}} {
		if err := task.Process(in("in", int64(i), "", r.v, r.ts)); err != nil {
			t.Fatal(err)
		}
	}
	if len(env.produced) != 0 {
		t.Fatalf("produced %d records before Advance, want none", len(env.produced))
	}
	_, err = task.Advance(time.UnixMilli(100))
	var oe *topology.OperatorError
	if !errors.As(err, &oe) {
		t.Fatalf("Advance = %v, want the bad key's OperatorError", err)
	}
	want := []out{
		{Topic: "out", Key: "a", Value: i64(3), Timestamp: 5}, // slice [0,10): a@1, a@5, a@3
		{Topic: "out", Key: "b", Value: i64(1), Timestamp: 2},
		{Topic: "out", Key: "a", Value: i64(1), Timestamp: 12}, // slice [10,20)
	}
	assertOuts(t, env.produced, want)
	env.produced = nil
	if _, err := task.Advance(time.UnixMilli(200)); err != nil || len(env.produced) != 0 {
		t.Fatalf("second Advance: %v, %d records; want nothing left", err, len(env.produced))
	}

	// A failing producer is not a record's error, also when a record's
	// error comes with it: Advance's error must not pass for one (the
	// error policy would set a record aside and go on).
	for i, v := range []string{"bad", "a"} {
		if err := task.Process(in("in", int64(10+i), "", v, 30)); err != nil {
			t.Fatal(err)
		}
	}
	down := errors.New("broker down")
	env.produceErr = down
	_, err = task.Advance(time.UnixMilli(300))
	if !errors.Is(err, down) || errors.As(err, &oe) {
		t.Fatalf("Advance with a failing producer = %v, want it, and no OperatorError", err)
	}
}

// TestCombineAfterWindows: what closing windows send a Combine during an
// Advance leaves it in the same Advance: nothing is held at a checkpoint.
func TestCombineAfterWindows(t *testing.T) {
	tum, err := windows.Tumbling(10 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	env := newFakeEnv(map[string]int32{"out": 1, "app-late": 1})
	task := newTask(t, func(top *topology.Topology) {
		s := topology.Source(top, "in", serde.String(), serde.String())
		counts := topology.Aggregate(s, windows.Spec{Assigner: tum}, windows.Count[string](), serde.Int64(), topology.Named("count"))
		byWindow := topology.Map(counts, func(_ string, w topology.Windowed[int64]) (int64, int64, error) { return w.Window.Start, w.Value, nil })
		c := topology.Combine(topology.WithSerdes(byWindow, serde.Int64(), serde.Int64()), tum, windows.Sum[int64]())
		topology.To(topology.WithSerdes(c, serde.Int64(), serde.Int64()), "out")
	}, 0, 0, env)
	for i, k := range []string{"a", "b", "a", "c"} {
		if err := task.Process(in("in", int64(i), k, "", int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := task.Process(in("in", 4, "a", "", 50)); err != nil { // moves the watermark past [0,10)
		t.Fatal(err)
	}
	if len(env.produced) != 0 {
		t.Fatalf("produced %d records before Advance, want none", len(env.produced))
	}
	if _, err := task.Advance(time.UnixMilli(100)); err != nil {
		t.Fatal(err)
	}
	// The three keys' results of [0,10), combined into one record.
	assertOuts(t, env.produced, []out{{Topic: "out", Key: i64(0), Value: i64(4), Timestamp: 9}})
}
