package state

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

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

func TestTTLExpiryProducesDirtyDelete(t *testing.T) {
	for _, domain := range []TimeDomain{EventTime, ProcessingTime} {
		t.Run(domain.String(), func(t *testing.T) {
			clock := &fakeClock{event: 1000, proc: 50_000}
			set := func(ms int64) {
				if domain == EventTime {
					clock.event = ms
				} else {
					clock.proc = ms
				}
			}
			base := clock.event
			if domain == ProcessingTime {
				base = clock.proc
			}
			db := openMem(t)
			task := db.Task("0_0")
			s := task.Store("ttl")
			v := NewValue(s, serde.String(), WithTTL(TTL{After: time.Second, Domain: domain}, clock))
			if err := v.Set([]byte("k"), "hello"); err != nil {
				t.Fatal(err)
			}
			if err := task.Apply(Checkpoint{ID: 1}); err != nil {
				t.Fatal(err)
			}
			// Moving the other domain's clock changes nothing.
			if domain == EventTime {
				clock.proc += 10_000
			} else {
				clock.event += 10_000
			}
			set(base + 999)
			if got, ok, err := v.Get([]byte("k")); got != "hello" || !ok || err != nil {
				t.Fatalf("at +999ms: %q %v %v", got, ok, err)
			}
			if d := dirtyOf(t, task); len(d) != 0 {
				t.Fatalf("a live read made writes: %v", d)
			}
			set(base + 1000)
			if _, ok, err := v.Get([]byte("k")); ok || err != nil {
				t.Fatalf("at +1000ms: present=%v err=%v, want expired", ok, err)
			}
			want := []dirtyRec{{Store: "ttl", Key: "k", Deleted: true}}
			if d := dirtyOf(t, task); !slices.Equal(d, want) {
				t.Fatalf("dirty after expired read = %v, want %v", d, want)
			}
			// A write refreshes the expiry from now.
			if err := v.Set([]byte("k"), "again"); err != nil {
				t.Fatal(err)
			}
			set(base + 1999)
			if got, ok, _ := v.Get([]byte("k")); !ok || got != "again" {
				t.Fatalf("rewritten value at +999ms after the write: %q %v", got, ok)
			}
		})
	}
}

func TestTTLMapEntriesExpireOnTheirOwn(t *testing.T) {
	clock := &fakeClock{proc: 0}
	s := NewMemStore()
	m := NewMap(s, serde.String(), serde.String(), WithTTL(TTL{After: 10 * time.Millisecond, Domain: ProcessingTime}, clock))
	_ = m.Put([]byte("k"), "old", "1")
	clock.proc = 5
	_ = m.Put([]byte("k"), "new", "2")
	clock.proc = 10
	var seen []string
	if err := m.Range([]byte("k"), func(mk, v string) error { seen = append(seen, mk); return nil }); err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "Range at 10ms", seen, []string{"new"})
	if s.Len() != 1 {
		t.Fatalf("expired entry not deleted by Range: %d entries", s.Len())
	}
}

func TestInvalidTTL(t *testing.T) {
	s := NewMemStore()
	for name, opt := range map[string]HandleOpt{
		"zero after": WithTTL(TTL{Domain: EventTime}, &fakeClock{}),
		"no domain":  WithTTL(TTL{After: time.Second}, &fakeClock{}),
		"nil clock":  WithTTL(TTL{After: time.Second, Domain: EventTime}, nil),
	} {
		v := NewValue(s, serde.String(), opt)
		if err := v.Set([]byte("k"), "x"); !errors.Is(err, ErrInvalidTTL) {
			t.Errorf("%s: Set = %v, want ErrInvalidTTL", name, err)
		}
		if _, _, err := v.Get([]byte("k")); !errors.Is(err, ErrInvalidTTL) {
			t.Errorf("%s: Get = %v, want ErrInvalidTTL", name, err)
		}
		if err := NewMap(s, serde.String(), serde.String(), opt).Range(nil, nil); !errors.Is(err, ErrInvalidTTL) {
			t.Errorf("%s: Range = %v, want ErrInvalidTTL", name, err)
		}
	}
	if s.Len() != 0 {
		t.Fatal("an invalid handle wrote")
	}
}

func TestSweeperBoundedAndResumable(t *testing.T) {
	handleStores(t, func(t *testing.T, s Store) {
		clock := &fakeClock{event: 0}
		v := NewValue(s, serde.Int64(), WithTTL(TTL{After: 100 * time.Millisecond, Domain: EventTime}, clock))
		plain := NewValue(s, serde.Int64())
		// k00..k19: even keys written at t=0 (expire at 100), odd at t=50
		// (expire at 150); p0, p1 have no expiry; "raw" is not a handle value.
		for i := range 20 {
			clock.event = int64(i%2) * 50
			if err := v.Set(fmt.Appendf(nil, "k%02d", i), int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		_ = plain.Set([]byte("p0"), 0)
		_ = plain.Set([]byte("p1"), 1)
		mustPut(t, s, "raw", "not an envelope")

		sw := NewSweeper(s, EventTime, clock)
		clock.event = 120
		// 23 entries; limit 8: three calls cover them all, the fourth wraps.
		var deleted []int
		for range 3 {
			n, err := sw.Sweep(8)
			if err != nil {
				t.Fatal(err)
			}
			deleted = append(deleted, n)
		}
		// First 8 keys k00..k07 hold 4 even keys; next 8 k08..k15: 4;
		// last 7 k16..k19, p0, p1, raw: 2.
		if !slices.Equal(deleted, []int{4, 4, 2}) {
			t.Fatalf("deleted per call = %v, want [4 4 2]", deleted)
		}
		var left []string
		_ = s.Scan(nil, func(k, _ []byte) error { left = append(left, string(k)); return nil })
		want := []string{"k01", "k03", "k05", "k07", "k09", "k11", "k13", "k15", "k17", "k19", "p0", "p1", "raw"}
		wantStrings(t, "after first pass", left, want)

		clock.event = 150
		if n, err := sw.Sweep(100); n != 10 || err != nil {
			t.Fatalf("second pass deleted %d (%v), want 10", n, err)
		}
		if n, _ := sw.Sweep(100); n != 0 {
			t.Fatalf("third pass deleted %d, want 0", n)
		}
	})
}
