package topologytest_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/weirstream/weir/changelog"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/topologytest"
)

const (
	dedupIn    = "events"
	dedupOut   = "unique"
	dedupStore = "dedup-seen"
	dedupTTL   = 10 * time.Second
)

// dedup passes on the first record of each key and drops the key's
// records for ttl after it.
func dedup(ttl state.TTL) *topology.Topology {
	top := topology.New()
	str := serde.String()
	s := topology.Source(top, dedupIn, str, str)
	out := topology.Process(s, func(ctx *topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
		st, err := ctx.Store(dedupStore)
		if err != nil {
			return nil, err
		}
		seen := state.NewValue(st, serde.Int64(), state.WithTTL(ttl, ctx))
		return func(ctx *topology.Context, r topology.Record[string, string], out func(topology.Record[string, string]) error) error {
			_, dup, err := seen.Get([]byte(r.Key))
			if err != nil || dup {
				return err
			}
			if err := seen.Set([]byte(r.Key), r.Timestamp); err != nil {
				return err
			}
			return out(r)
		}, nil
	}, topology.Named("dedup"), topology.Stores(dedupStore))
	topology.To(topology.WithSerdes(out, str, str), dedupOut)
	return top
}

func TestDedupWithEventTimeTTL(t *testing.T) {
	d, err := topologytest.New(dedup(state.EventTimeTTL(dedupTTL)), topologytest.AppID("dd"), topologytest.Partitions(1))
	if err != nil {
		t.Fatal(err)
	}
	pipe := func(key string, at int64) {
		t.Helper()
		if err := d.Pipe(dedupIn, 0, []byte(key), []byte(fmt.Sprintf("%s@%d", key, at)), base+at); err != nil {
			t.Fatal(err)
		}
	}
	// a and b are written while the watermark is still unknown; every
	// duplicate within 10s of event time after their first record is
	// dropped, the last one a millisecond before the TTL.
	for _, r := range []struct {
		key string
		at  int64
	}{{"a", 0}, {"b", 1}, {"a", 2000}, {"b", 5000}, {"a", 9999}, {"b", 10000}, {"c", 20000}, {"a", 20001}, {"b", 20002}, {"c", 29999}} {
		pipe(r.key, r.at)
	}
	want := []string{"a@0", "b@1", "c@20000", "a@20001", "b@20002"}
	if got := values(t, d); !slices.Equal(got, want) {
		t.Fatalf("output %q, want %q", got, want)
	}

	// Keys nobody reads again are swept at checkpoints once the watermark
	// passes their expiry (a, b, c expire at 30000..30002), with
	// tombstones in the changelog, so a restore does not bring them back.
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if n := d.StoreLen(dedupStore); n != 3 {
		t.Fatalf("%d keys in %s at watermark 29999, want 3 (none expired)", n, dedupStore)
	}
	pipe("z", 40000)
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if n := d.StoreLen(dedupStore); n != 1 {
		t.Fatalf("%d keys in %s at watermark 40000, want 1 (z)", n, dedupStore)
	}
	last := make(map[string][]byte)
	for _, r := range d.Output(changelog.Topic("dd", dedupStore)) {
		last[string(r.Key)] = r.Value
	}
	for _, k := range []string{"a", "b", "c"} {
		if v, ok := last[k]; !ok || v != nil {
			t.Errorf("changelog of %s ends with %q for %q, want a tombstone", dedupStore, v, k)
		}
	}
	if err := d.Crash(topologytest.RestoreFromChangelog); err != nil {
		t.Fatal(err)
	}
	if n := d.StoreLen(dedupStore); n != 1 {
		t.Fatalf("%d keys in %s restored from the changelog, want 1", n, dedupStore)
	}
	pipe("z", 40001) // a duplicate of z: dropped after the restore too
	pipe("a", 40002)
	want = append(want, "z@40000", "a@40002")
	if got := values(t, d); !slices.Equal(got, want) {
		t.Fatalf("output %q, want %q", got, want)
	}
}

func values(t *testing.T, d *topologytest.Driver) []string {
	t.Helper()
	recs, err := topologytest.OutputOf(d, dedupOut, serde.String(), serde.String())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Value)
	}
	return got
}

// In processing time a duplicate is dropped until the wall clock passes
// the first record's processing time plus the TTL, whatever the records'
// timestamps; a checkpoint with no input sweeps what expired.
func TestDedupWithProcessingTimeTTL(t *testing.T) {
	d, err := topologytest.New(dedup(state.ProcessingTimeTTL(dedupTTL)), topologytest.AppID("dd"), topologytest.Partitions(1), topologytest.StartTime(time.UnixMilli(base)))
	if err != nil {
		t.Fatal(err)
	}
	pipe := func(key string, at int64) {
		t.Helper()
		if err := d.Pipe(dedupIn, 0, []byte(key), []byte(fmt.Sprintf("%s@%d", key, at)), at); err != nil {
			t.Fatal(err)
		}
	}
	advance := func(dt time.Duration) {
		t.Helper()
		if err := d.AdvanceTime(dt); err != nil {
			t.Fatal(err)
		}
	}
	pipe("a", 0)
	advance(5 * time.Second)
	pipe("a", 1_000_000) // event time far ahead: no matter
	pipe("b", 1)
	advance(5*time.Second - time.Millisecond)
	pipe("a", 2) // 9.999s after a's first record
	advance(time.Millisecond)
	pipe("a", 3) // 10s: expired
	want := []string{"a@0", "b@1", "a@3"}
	if got := values(t, d); !slices.Equal(got, want) {
		t.Fatalf("output %q, want %q", got, want)
	}
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if n := d.StoreLen(dedupStore); n != 2 {
		t.Fatalf("%d keys in %s, want 2 (a, b)", n, dedupStore)
	}
	advance(5 * time.Second) // b expired (written at 5s), a not (10s)
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if n := d.StoreLen(dedupStore); n != 1 {
		t.Fatalf("%d keys in %s after b's TTL, want 1 (a)", n, dedupStore)
	}
}
