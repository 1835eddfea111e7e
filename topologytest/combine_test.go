package topologytest_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/topologytest"
	"github.com/weirstream/weir/windows"
)

// hotKeyCounts counts records per key (the record value, a word) in 10s
// windows hopping by 2s, with the key change through a repartition topic;
// combined, the records are pre-counted per key, slice and batch before the
// repartition (topology.Combine) and summed after it.
func hotKeyCounts(t *testing.T, combined bool) *topology.Topology {
	t.Helper()
	hop, err := windows.Hopping(10*time.Second, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	top := topology.New()
	src := topology.Source(top, "words", serde.Bytes(), serde.String(),
		topology.WithWatermarks(windows.BoundedOutOfOrderness(3*time.Second)))
	words := topology.Map(src, func(_ []byte, w string) (string, int64, error) { return w, 1, nil }, topology.Named("by-word"))
	words = topology.WithSerdes(words, serde.String(), serde.Int64())
	spec := windows.Spec{Assigner: hop, Grace: time.Second}
	if combined {
		words = topology.WithSerdes(topology.Combine(words, hop, windows.Sum[int64](), topology.Named("pre-count")), serde.String(), serde.Int64())
	}
	counts := topology.Aggregate(words, spec, windows.Sum[int64](), serde.Int64(), topology.Named("count"))
	out := topology.MapValues(counts, func(w string, r topology.Windowed[int64]) (string, error) {
		return fmt.Sprintf("%s [%d,%d) %d", w, r.Window.Start, r.Window.End, r.Value), nil
	})
	topology.To(topology.WithSerdes(out, serde.String(), serde.String()), "counts")
	return top
}

// TestCombineKeepsResults feeds the same out-of-order input, hot key, late
// records and a crash included, through a topology with and without
// Combine and expects the same window results and late records, and fewer
// records in the repartition topic when combined.
func TestCombineKeepsResults(t *testing.T) {
	type run struct {
		results     []string
		late        int
		repartition int
	}
	do := func(combined bool, seed uint64) run {
		d, err := topologytest.New(hotKeyCounts(t, combined), topologytest.AppID("hk"), topologytest.Partitions(3))
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, 5))
		ts := base
		for i := range 3000 {
			ts += int64(rng.IntN(40))
			word := "hot"
			if rng.IntN(2) == 0 {
				word = "w" + strconv.Itoa(rng.IntN(30))
			}
			at := ts - int64(rng.IntN(2500))
			if rng.IntN(200) == 0 {
				at -= 20_000 // late
			}
			if err := d.Append("words", int32(rng.IntN(3)), nil, []byte(word), at); err != nil {
				t.Fatal(err)
			}
			switch {
			case i%97 == 0:
				if err := d.Run(); err != nil {
					t.Fatal(err)
				}
			case i%500 == 250:
				if err := d.Checkpoint(); err != nil {
					t.Fatal(err)
				}
			case i == 1700: // uncommitted work is redone, combined or not
				if err := d.Run(); err != nil {
					t.Fatal(err)
				}
				if err := d.Crash(topologytest.RestoreFromChangelog); err != nil {
					t.Fatal(err)
				}
			}
		}
		for p := range int32(3) { // the end: every window closes
			if err := d.Append("words", p, nil, []byte("end"), ts+60_000); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		recs, err := topologytest.OutputOf(d, "counts", serde.String(), serde.String())
		if err != nil {
			t.Fatal(err)
		}
		var r run
		for _, rec := range recs {
			r.results = append(r.results, rec.Value)
		}
		slices.Sort(r.results)
		for _, l := range d.Late() {
			if combined {
				n, err := serde.Int64().Decode(l.Value)
				if err != nil {
					t.Fatal(err)
				}
				r.late += int(n) // a combined late record counts its records
			} else {
				r.late++
			}
		}
		for _, rec := range d.Output("hk-count-repartition") {
			if !rec.Control() {
				r.repartition++
			}
		}
		return r
	}
	for seed := range uint64(5) {
		plain, comb := do(false, seed), do(true, seed)
		if len(plain.results) == 0 || plain.late == 0 {
			t.Fatalf("seed %d: the input makes %d results and %d late records: want some of each", seed, len(plain.results), plain.late)
		}
		if !slices.Equal(comb.results, plain.results) {
			t.Errorf("seed %d: combined results differ:\n%v\nwant\n%v", seed, comb.results, plain.results)
		}
		if comb.late != plain.late {
			t.Errorf("seed %d: %d late records combined, %d without", seed, comb.late, plain.late)
		}
		// Batches here are ~100 records over 3 partitions and 2-3
		// slices, and half the records are one hot key: combining
		// halves the repartition topic.
		if comb.repartition*3 > plain.repartition*2 {
			t.Errorf("seed %d: %d records through the repartition topic combined, %d without: want under two thirds", seed, comb.repartition, plain.repartition)
		}
		t.Logf("seed %d: %d results, %d late; repartition records %d combined, %d without", seed, len(plain.results), plain.late, comb.repartition, plain.repartition)
	}
}

func TestCombineValidation(t *testing.T) {
	sess, err := windows.Session(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	top := topology.New()
	src := topology.Source(top, "in", serde.String(), serde.Int64())
	topology.Combine(src, sess, windows.Sum[int64]())
	noKeys := topology.Map(src, func(k string, v int64) (int64, int64, error) { return v, v, nil })
	tum, err := windows.Tumbling(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	topology.Combine(noKeys, tum, windows.Sum[int64]())
	_, err = top.Build("app")
	if err == nil {
		t.Fatal("Build: want errors for session windows and a stream without a key serde")
	}
	for _, want := range []string{"session windows have no slices", "no key serde"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Build error %q does not say %q", err, want)
		}
	}
}
