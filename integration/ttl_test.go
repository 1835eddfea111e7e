package integration

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/changelog"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
)

// dedupTopology passes on the first record of each key and drops the
// key's records for ttl of event time after it (a value state with an
// event-time TTL over the task context).
func dedupTopology(in, out, store string, ttl time.Duration) *topology.Topology {
	top := topology.New()
	str := serde.String()
	s := topology.Source(top, in, str, str, topology.Named("source"))
	unique := topology.Process(s, func(ctx *topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
		st, err := ctx.Store(store)
		if err != nil {
			return nil, err
		}
		seen := state.NewValue(st, serde.Int64(), state.WithTTL(state.EventTimeTTL(ttl), ctx))
		return func(_ *topology.Context, r topology.Record[string, string], out func(topology.Record[string, string]) error) error {
			_, dup, err := seen.Get([]byte(r.Key))
			if err != nil || dup {
				return err
			}
			if err := seen.Set([]byte(r.Key), r.Timestamp); err != nil {
				return err
			}
			return out(r)
		}, nil
	}, topology.Named("dedup"), topology.Stores(store))
	topology.To(topology.WithSerdes(unique, str, str), out, topology.Named("sink"))
	return top
}

// TestDedupEventTimeTTL runs the dedup topology (TTL 10s of event time)
// over two partitions, in phases so that each phase's watermark is known:
// every duplicate within the TTL of a key's first record is dropped (also
// those read while the watermark was unknown), a key seen again after its
// TTL passes again, and once the watermark passes every expiry but one,
// the checkpoints sweep the expired keys: their changelog ends with a
// tombstone. Outputs and changelogs are read read_committed and exact.
func TestDedupEventTimeTTL(t *testing.T) {
	t.Parallel()
	const (
		in, out = "events", "unique"
		app     = "dedup"
		store   = "dedup-seen"
		parts   = 2
	)
	c := newCluster(t)
	c.createTopic(in, parts)
	startEngine(t, c, dedupTopology(in, out, store, 10*time.Second), app, nil)
	prod := manualProducer(t, c)
	base := time.Now().Add(-time.Hour).UnixMilli()

	type ev struct {
		key string
		at  int64 // ms after base
	}
	var want []string // "key@at", keys prefixed with their input partition
	phase := func(evs []ev, passed ...ev) {
		t.Helper()
		var recs []*kgo.Record
		for p := range int32(parts) {
			for _, e := range evs {
				key := fmt.Sprintf("p%d-%s", p, e.key)
				recs = append(recs, &kgo.Record{Topic: in, Partition: p, Key: []byte(key), Value: fmt.Appendf(nil, "%s@%d", key, e.at), Timestamp: time.UnixMilli(base + e.at)})
			}
			for _, e := range passed {
				want = append(want, fmt.Sprintf("p%d-%s@%d", p, e.key, e.at))
			}
		}
		produceWith(t, prod, recs)
		slices.Sort(want)
		var got []string
		for _, r := range c.consume(out, len(want)) {
			got = append(got, string(r.Value))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("output:\n got  %q\n want %q", got, want)
		}
	}
	// a and b first come while the watermark is unknown; their
	// duplicates up to a millisecond before the TTL are dropped. The
	// watermark stays below both expiries (10000, 10001).
	phase([]ev{{"a", 0}, {"b", 1}, {"a", 2000}, {"b", 5000}, {"b", 9000}, {"a", 9999}}, ev{"a", 0}, ev{"b", 1})
	// c moves the watermark to 20000, past a's and b's expiries: the
	// checkpoint that commits c's output sweeps them.
	phase([]ev{{"c", 20000}}, ev{"c", 20000})
	// a and b pass again; their new duplicates and c's are dropped.
	phase([]ev{{"a", 20001}, {"b", 20002}, {"a", 25000}, {"c", 29999}}, ev{"a", 20001}, ev{"b", 20002})
	// z moves the watermark to 40000: a, b and c (expiring at 30001,
	// 30002, 30000) are swept without being read again.
	phase([]ev{{"z", 40000}}, ev{"z", 40000})

	// Per partition: each key is written when it passes and deleted by the
	// sweep after its expiry.
	wantLog := make(map[string][]string)
	for p := range parts {
		k := func(s string) string { return fmt.Sprintf("p%d-%s", p, s) }
		wantLog[k("a")] = []string{"set", "delete", "set", "delete"}
		wantLog[k("b")] = []string{"set", "delete", "set", "delete"}
		wantLog[k("c")] = []string{"set", "delete"}
		wantLog[k("z")] = []string{"set"}
	}
	clTopic := changelog.Topic(app, store)
	var gotLog map[string][]string
	waitFor(t, outputTimeout, "tombstones of the swept keys in "+clTopic, func() bool {
		gotLog = make(map[string][]string)
		for _, r := range c.readCommitted(clTopic) {
			_, deleted, err := changelog.DecodeValue(r.Value)
			if err != nil {
				t.Fatalf("%s: %v", clTopic, err)
			}
			op := "set"
			if deleted {
				op = "delete"
			}
			gotLog[string(r.Key)] = append(gotLog[string(r.Key)], op)
		}
		for k, w := range wantLog {
			if len(gotLog[k]) < len(w) {
				return false
			}
		}
		return true
	})
	for k, w := range wantLog {
		if !slices.Equal(gotLog[k], w) {
			t.Errorf("changelog of %q: %v, want %v", k, gotLog[k], w)
		}
	}
}
