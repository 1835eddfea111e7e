package windows

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
)

// TestQueryKeyMatchesEmission checks that QueryKey reads from the store
// exactly the windows and values Advance emits later, when no record comes
// in between, for every kind of time window, sliced hopping windows
// (also after an upgrade from unsliced entries) included; and that
// QueryKeys lists exactly the keys with windows, page by page.
func TestQueryKeyMatchesEmission(t *testing.T) {
	hop := mustAssigner(Hopping(10*time.Millisecond, 5*time.Millisecond))
	unsliced := Sum[int64]()
	unsliced.Commutative = false
	for _, tc := range []struct {
		name string
		spec Spec
		// before, if set, writes the first half of the records first
		// (an operator from before an upgrade).
		before *Aggregation[int64, int64]
		agg    Aggregation[int64, int64]
	}{
		{"tumbling", Spec{Assigner: mustAssigner(Tumbling(10 * time.Millisecond)), Grace: 3 * time.Millisecond}, nil, Sum[int64]()},
		{"hopping sliced", Spec{Assigner: hop, Grace: 2 * time.Millisecond}, nil, Sum[int64]()},
		{"hopping unsliced", Spec{Assigner: hop}, nil, unsliced},
		{"hopping upgraded to sliced", Spec{Assigner: hop}, &unsliced, Sum[int64]()},
		{"session", Spec{Assigner: mustAssigner(Session(4 * time.Millisecond))}, nil, Sum[int64]()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			st := state.NewMemStore()
			open := func(agg Aggregation[int64, int64]) *Operator[int64, int64] {
				o, err := NewOperator(tc.spec, st, serde.Int64(), agg)
				if err != nil {
					t.Fatal(err)
				}
				return o
			}
			var emitted []Result[int64]
			emit := func(r Result[int64]) error {
				emitted = append(emitted, r)
				return nil
			}
			keys := []string{"a", "bb", "c", "dd", "e"}
			add := func(o *Operator[int64, int64], from, to int) {
				for ts := from; ts < to; ts++ {
					k := keys[rng.IntN(len(keys))]
					if _, err := o.Add([]byte(k), int64(rng.IntN(100)), int64(ts), int64(ts-3)); err != nil {
						t.Fatal(err)
					}
					if ts%7 == 0 {
						if err := o.Advance(int64(ts-3), emit); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			o := open(tc.agg)
			if tc.before != nil {
				add(open(*tc.before), 0, 56) // windows open at 57 too
				o = open(tc.agg)
				add(o, 52, 60)
			} else {
				add(o, 0, 60)
			}
			if err := o.Advance(57, emit); err != nil {
				t.Fatal(err)
			}
			emitted = nil

			var queried []Result[int64]
			var withWindows [][]byte
			for _, k := range keys {
				ws, err := QueryKey(tc.spec, serde.Int64(), tc.agg, st, []byte(k))
				if err != nil {
					t.Fatalf("QueryKey(%q): %v", k, err)
				}
				if !slices.IsSortedFunc(ws, func(a, b Result[int64]) int { return int(a.Window.Start - b.Window.Start) }) {
					t.Errorf("QueryKey(%q): not in start order: %v", k, ws)
				}
				queried = append(queried, ws...)
				if len(ws) > 0 {
					withWindows = append(withWindows, []byte(k))
				}
			}
			slices.SortFunc(withWindows, CompareKeys)
			var want, listed []string
			for _, k := range withWindows {
				want = append(want, string(k))
			}
			var from []byte
			for pages := 0; ; pages++ {
				page, err := QueryKeys(st, nil, from, 3)
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range page[:min(len(page), 2)] {
					listed = append(listed, string(k))
				}
				if len(page) <= 2 || pages > len(keys) {
					break
				}
				from = page[2]
			}
			if !slices.Equal(listed, want) {
				t.Errorf("QueryKeys in pages of 2: %q, want %q", listed, want)
			}
			dd, err := QueryKeys(st, []byte("d"), nil, 10)
			if err != nil {
				t.Fatal(err)
			}
			var gotD []string
			for _, k := range dd {
				gotD = append(gotD, string(k))
			}
			if wantD := slices.DeleteFunc(slices.Clone(want), func(k string) bool { return k[0] != 'd' }); !slices.Equal(gotD, wantD) {
				t.Errorf("QueryKeys with prefix d: %q, want %q", gotD, wantD)
			}
			if err := o.Advance(math.MaxInt64, emit); err != nil {
				t.Fatal(err)
			}
			if len(emitted) == 0 {
				t.Fatal("nothing was open at watermark 57")
			}
			if got, want := describe(queried), describe(emitted); !slices.Equal(got, want) {
				t.Errorf("QueryKey before emission:\n%v\nemitted:\n%v", got, want)
			}

		})
	}
}

func describe(rs []Result[int64]) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s [%d,%d) %d", r.Key, r.Window.Start, r.Window.End, r.Value)
	}
	slices.Sort(out)
	return out
}
