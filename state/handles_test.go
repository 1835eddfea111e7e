package state

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/weirstream/weir/serde"
)

// handleStores runs a test against a task store and a MemStore.
func handleStores(t *testing.T, fn func(t *testing.T, s Store)) {
	t.Run("task", func(t *testing.T) { fn(t, openMem(t).Task("0_0").Store("h")) })
	t.Run("mem", func(t *testing.T) { fn(t, NewMemStore()) })
}

type point struct{ X, Y int }

func TestValueRoundTrip(t *testing.T) {
	handleStores(t, func(t *testing.T, s Store) {
		v := NewValue(s, serde.JSON[point]())
		if _, ok, err := v.Get([]byte("k")); ok || err != nil {
			t.Fatalf("Get of absent: %v %v", ok, err)
		}
		if err := v.Set([]byte("k"), point{1, 2}); err != nil {
			t.Fatal(err)
		}
		got, ok, err := v.Get([]byte("k"))
		if err != nil || !ok || got != (point{1, 2}) {
			t.Fatalf("Get = %v %v %v", got, ok, err)
		}
		raw, _ := s.Get([]byte("k"))
		if want := "\x00" + `{"X":1,"Y":2}`; string(raw) != want {
			t.Fatalf("stored %q, want %q", raw, want)
		}
		if err := v.Clear([]byte("k")); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := v.Get([]byte("k")); ok {
			t.Fatal("present after Clear")
		}
	})
}

func TestValueBadEncoding(t *testing.T) {
	s := NewMemStore()
	mustPut(t, s, "k", "\x07junk")
	if _, _, err := NewValue(s, serde.String()).Get([]byte("k")); !errors.Is(err, ErrBadValue) {
		t.Fatalf("Get of junk: %v, want ErrBadValue", err)
	}
}

func TestMapRoundTrip(t *testing.T) {
	handleStores(t, func(t *testing.T, s Store) {
		m := NewMap(s, serde.String(), serde.Int64())
		for _, e := range []struct {
			key, mk string
			v       int64
		}{{"a", "x", 1}, {"a", "w", 2}, {"a", "y", 3}, {"ab", "x", 9}, {"", "x", 7}} {
			if err := m.Put([]byte(e.key), e.mk, e.v); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Delete([]byte("a"), "y"); err != nil {
			t.Fatal(err)
		}
		got, ok, err := m.Get([]byte("a"), "w")
		if err != nil || !ok || got != 2 {
			t.Fatalf("Get(a, w) = %v %v %v", got, ok, err)
		}
		if _, ok, _ := m.Get([]byte("a"), "y"); ok {
			t.Fatal("deleted entry present")
		}
		rangeOf := func(key string) []string {
			var out []string
			if err := m.Range([]byte(key), func(mk string, v int64) error {
				out = append(out, fmt.Sprintf("%s=%d", mk, v))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return out
		}
		// Key "a" does not see key "ab"'s entries; order is by map key.
		wantStrings(t, "Range(a)", rangeOf("a"), []string{"w=2", "x=1"})
		wantStrings(t, "Range(ab)", rangeOf("ab"), []string{"x=9"})
		wantStrings(t, "Range()", rangeOf(""), []string{"x=7"})

		// fn may modify the map.
		if err := m.Range([]byte("a"), func(mk string, v int64) error { return m.Delete([]byte("a"), mk) }); err != nil {
			t.Fatal(err)
		}
		wantStrings(t, "Range(a) after deleting in Range", rangeOf("a"), nil)
		if err := m.Clear([]byte("ab")); err != nil {
			t.Fatal(err)
		}
		wantStrings(t, "Range(ab) after Clear", rangeOf("ab"), nil)
		wantStrings(t, "Range() untouched", rangeOf(""), []string{"x=7"})
	})
}

func TestListRoundTrip(t *testing.T) {
	handleStores(t, func(t *testing.T, s Store) {
		l := NewList(s, serde.String())
		if got, err := l.Get([]byte("k")); got != nil || err != nil {
			t.Fatalf("Get of absent = %v %v", got, err)
		}
		for _, v := range []string{"a", "", "ccc"} {
			if err := l.Append([]byte("k"), v); err != nil {
				t.Fatal(err)
			}
		}
		got, err := l.Get([]byte("k"))
		if err != nil || !slices.Equal(got, []string{"a", "", "ccc"}) {
			t.Fatalf("Get = %q %v", got, err)
		}
		if err := l.Clear([]byte("k")); err != nil {
			t.Fatal(err)
		}
		if got, _ := l.Get([]byte("k")); got != nil {
			t.Fatalf("after Clear: %q", got)
		}
	})
}

func TestReducingAndAggregating(t *testing.T) {
	handleStores(t, func(t *testing.T, s Store) {
		sum := NewReducing(s, serde.Int64(), func(a, b int64) int64 { return a + b })
		for _, v := range []int64{5, 7, -2} {
			if err := sum.Add([]byte("r"), v); err != nil {
				t.Fatal(err)
			}
		}
		if got, ok, err := sum.Get([]byte("r")); got != 10 || !ok || err != nil {
			t.Fatalf("sum = %v %v %v", got, ok, err)
		}

		type avg struct{ Sum, N int64 }
		mean := NewAggregating(s, serde.JSON[avg](), func() avg { return avg{} },
			func(a avg, in int64) avg { return avg{a.Sum + in, a.N + 1} })
		for _, v := range []int64{2, 4, 9} {
			if err := mean.Add([]byte("m"), v); err != nil {
				t.Fatal(err)
			}
		}
		if got, ok, err := mean.Get([]byte("m")); got != (avg{15, 3}) || !ok || err != nil {
			t.Fatalf("mean = %+v %v %v", got, ok, err)
		}
		if err := mean.Clear([]byte("m")); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := mean.Get([]byte("m")); ok {
			t.Fatal("present after Clear")
		}
	})
}
