package state

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/weirstream/weir/serde"
)

// A value written while the watermark is unknown lives until the
// watermark, once known, passes the record's time plus the TTL: an
// unknown watermark expires nothing, neither on read nor in a sweep.
func TestEventTimeTTLUnknownWatermarkExpiresNothing(t *testing.T) {
	handleStores(t, func(t *testing.T, s Store) {
		clock := newFakeClock()
		v := NewValue(s, serde.String(), WithTTL(EventTimeTTL(time.Second), clock))
		clock.ts = 5000
		if err := v.Set([]byte("k"), "x"); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := v.Get([]byte("k")); !ok || err != nil {
			t.Fatalf("read with the watermark unknown: present=%v err=%v, want present", ok, err)
		}
		if n, err := NewSweeper(s, EventTime, clock).Sweep(100); n != 0 || err != nil {
			t.Fatalf("sweep with the watermark unknown deleted %d (%v), want 0", n, err)
		}
		clock.wm = 5999
		if _, ok, _ := v.Get([]byte("k")); !ok {
			t.Fatal("expired at watermark 5999, want live until 6000 (written at record time 5000)")
		}
		clock.wm = 6000
		if _, ok, _ := v.Get([]byte("k")); ok {
			t.Fatal("live at watermark 6000, want expired")
		}
	})
}

// Expiry counts from the record's timestamp, not from the watermark at
// the write: a record far ahead of the watermark keeps its value until
// the watermark reaches its own time plus the TTL, and a late record's
// value is already expired when the watermark passed its time plus TTL.
func TestEventTimeTTLFromRecordTime(t *testing.T) {
	handleStores(t, func(t *testing.T, s Store) {
		clock := newFakeClock()
		v := NewValue(s, serde.String(), WithTTL(EventTimeTTL(time.Second), clock))
		clock.wm = 1000
		clock.ts = 50_000 // far ahead of the watermark
		if err := v.Set([]byte("ahead"), "x"); err != nil {
			t.Fatal(err)
		}
		clock.ts = 500 // late
		if err := v.Set([]byte("late"), "y"); err != nil {
			t.Fatal(err)
		}
		clock.wm = 2000
		if _, ok, _ := v.Get([]byte("ahead")); !ok {
			t.Fatal("value of a record at 50000 expired at watermark 2000 (measured from the watermark at its write)")
		}
		if _, ok, _ := v.Get([]byte("late")); ok {
			t.Fatal("value of a record at 500 live at watermark 2000, want expired at 1500")
		}
		clock.wm = 51_000
		if _, ok, _ := v.Get([]byte("ahead")); ok {
			t.Fatal("value of a record at 50000 live at watermark 51000")
		}
	})
}

// A record out of order does not shorten the life a later record gave a
// value; the value itself is the last one written.
func TestEventTimeTTLOutOfOrderWriteKeepsLaterExpiry(t *testing.T) {
	clock := newFakeClock()
	s := NewMemStore()
	v := NewValue(s, serde.String(), WithTTL(EventTimeTTL(time.Second), clock))
	clock.ts = 10_000
	_ = v.Set([]byte("k"), "new")
	clock.ts = 9000
	_ = v.Set([]byte("k"), "old")
	clock.wm = 10_999
	if got, ok, _ := v.Get([]byte("k")); !ok || got != "old" {
		t.Fatalf("at watermark 10999: %q %v, want \"old\" live until 11000", got, ok)
	}
	clock.wm = 11_000
	if _, ok, _ := v.Get([]byte("k")); ok {
		t.Fatal("live at watermark 11000")
	}
}

// A write from a processing-time timer (no record) counts at the
// watermark; with no watermark either, it is refused, not stored with a
// made-up time.
func TestEventTimeTTLWriteWithoutRecord(t *testing.T) {
	clock := newFakeClock()
	s := NewMemStore()
	v := NewValue(s, serde.String(), WithTTL(EventTimeTTL(time.Second), clock))
	if err := v.Set([]byte("k"), "x"); !errors.Is(err, ErrNoEventTime) {
		t.Fatalf("Set with no record and no watermark = %v, want ErrNoEventTime", err)
	}
	if s.Len() != 0 {
		t.Fatal("the refused write was stored")
	}
	clock.wm = 7000
	if err := v.Set([]byte("k"), "x"); err != nil {
		t.Fatal(err)
	}
	clock.wm = 7999
	if _, ok, _ := v.Get([]byte("k")); !ok {
		t.Fatal("expired before watermark + TTL")
	}
	clock.wm = 8000
	if _, ok, _ := v.Get([]byte("k")); ok {
		t.Fatal("live at watermark + TTL")
	}
}

func TestProcessingTimeTTL(t *testing.T) {
	handleStores(t, func(t *testing.T, s Store) {
		clock := newFakeClock()
		clock.proc = 50_000
		v := NewValue(s, serde.String(), WithTTL(ProcessingTimeTTL(time.Second), clock))
		if err := v.Set([]byte("k"), "hello"); err != nil {
			t.Fatal(err)
		}
		// Event time changes nothing.
		clock.ts, clock.wm = 1<<40, 1<<40
		clock.proc = 50_999
		if got, ok, err := v.Get([]byte("k")); got != "hello" || !ok || err != nil {
			t.Fatalf("at +999ms: %q %v %v", got, ok, err)
		}
		clock.proc = 51_000
		if _, ok, err := v.Get([]byte("k")); ok || err != nil {
			t.Fatalf("at +1000ms: present=%v err=%v, want expired", ok, err)
		}
		// A write refreshes the expiry from now.
		if err := v.Set([]byte("k"), "again"); err != nil {
			t.Fatal(err)
		}
		clock.proc = 51_999
		if got, ok, _ := v.Get([]byte("k")); !ok || got != "again" {
			t.Fatalf("rewritten value 999ms after the write: %q %v", got, ok)
		}
	})
}

// An expired read deletes the value, so the delete reaches the changelog;
// a live read writes nothing (OnCreateAndWrite).
func TestTTLExpiredReadProducesDirtyDelete(t *testing.T) {
	clock := newFakeClock()
	task := openMem(t).Task("0_0")
	v := NewValue(task.Store("ttl"), serde.String(), WithTTL(EventTimeTTL(time.Second), clock))
	clock.ts = 1000
	if err := v.Set([]byte("k"), "hello"); err != nil {
		t.Fatal(err)
	}
	if err := task.Apply(Checkpoint{ID: 1}); err != nil {
		t.Fatal(err)
	}
	clock.ts, clock.wm = 1500, 1999
	if _, ok, _ := v.Get([]byte("k")); !ok {
		t.Fatal("expired early")
	}
	if d := dirtyOf(t, task); len(d) != 0 {
		t.Fatalf("a live read made writes: %v", d)
	}
	clock.wm = 2000
	if _, ok, err := v.Get([]byte("k")); ok || err != nil {
		t.Fatalf("present=%v err=%v, want expired", ok, err)
	}
	want := []dirtyRec{{Store: "ttl", Key: "k", Deleted: true}}
	if d := dirtyOf(t, task); !slices.Equal(d, want) {
		t.Fatalf("dirty after expired read = %v, want %v", d, want)
	}
}

// RefreshOnRead (Flink's OnReadAndWrite): a live read restarts the
// value's life, in both domains, for Values and Map entries.
func TestTTLRefreshOnRead(t *testing.T) {
	clock := newFakeClock()
	s := NewMemStore()
	v := NewValue(s, serde.String(), WithTTL(EventTimeTTL(time.Second).RefreshOnRead(), clock))
	m := NewMap(s, serde.String(), serde.String(), WithTTL(ProcessingTimeTTL(time.Second).RefreshOnRead(), clock))
	clock.ts, clock.proc = 1000, 1000
	_ = v.Set([]byte("v"), "x")
	_ = m.Put([]byte("m"), "a", "1")
	clock.ts, clock.wm, clock.proc = 1900, 1900, 1900
	if _, ok, _ := v.Get([]byte("v")); !ok {
		t.Fatal("value expired early")
	}
	if err := m.Range([]byte("m"), func(string, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	clock.wm, clock.proc = 2500, 2500 // past the first expiry, before the refreshed one
	if got, ok, _ := v.Get([]byte("v")); !ok || got != "x" {
		t.Fatalf("value read at 1900 expired at watermark 2500: %q %v", got, ok)
	}
	if got, ok, _ := m.Get([]byte("m"), "a"); !ok || got != "1" {
		t.Fatalf("map entry read at 1900 expired at 2500: %q %v", got, ok)
	}
	// Without RefreshOnRead, reads do not extend.
	plain := NewValue(s, serde.String(), WithTTL(EventTimeTTL(time.Second), clock))
	clock.ts = 3000
	_ = plain.Set([]byte("p"), "y")
	clock.ts, clock.wm = 3900, 3900
	_, _, _ = plain.Get([]byte("p"))
	clock.wm = 4000
	if _, ok, _ := plain.Get([]byte("p")); ok {
		t.Fatal("a read extended a value without RefreshOnRead")
	}
}

func TestTTLMapEntriesExpireOnTheirOwn(t *testing.T) {
	clock := newFakeClock()
	s := NewMemStore()
	m := NewMap(s, serde.String(), serde.String(), WithTTL(ProcessingTimeTTL(10*time.Millisecond), clock))
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
		"zero TTL":      WithTTL(TTL{}, newFakeClock()),
		"zero duration": WithTTL(EventTimeTTL(0), newFakeClock()),
		"under 1ms":     WithTTL(ProcessingTimeTTL(time.Microsecond), newFakeClock()),
		"nil clock":     WithTTL(EventTimeTTL(time.Second), nil),
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

// Opening a handle with a TTL schedules its store for sweeping with the
// clock, in the TTL's domain; a handle without one does not.
func TestTTLHandleSchedulesSweep(t *testing.T) {
	clock := newFakeClock()
	s := NewMemStore()
	NewValue(s, serde.String())
	NewValue(s, serde.String(), WithTTL(EventTimeTTL(time.Second), clock))
	NewMap(s, serde.String(), serde.String(), WithTTL(ProcessingTimeTTL(time.Second), clock))
	NewValue(s, serde.String(), WithTTL(TTL{}, clock)) // invalid: no sweep
	if want := []TimeDomain{EventTime, ProcessingTime}; !slices.Equal(clock.sweeps, want) {
		t.Fatalf("sweeps scheduled: %v, want %v", clock.sweeps, want)
	}
}

// Values stored before this version (the same envelope: tag 01, expiry,
// payload) still decode and expire by their stored expiry.
func TestTTLStoredEnvelopeStillDecodes(t *testing.T) {
	clock := newFakeClock()
	s := NewMemStore()
	mustPut(t, s, "k", "\x01\x00\x00\x00\x00\x00\x00\x03\xe8hello") // expires at 1000
	mustPut(t, s, "p", "\x00plain")
	v := NewValue(s, serde.String(), WithTTL(EventTimeTTL(time.Second), clock))
	clock.wm = 999
	if got, ok, err := v.Get([]byte("k")); got != "hello" || !ok || err != nil {
		t.Fatalf("stored value: %q %v %v", got, ok, err)
	}
	if got, ok, err := v.Get([]byte("p")); got != "plain" || !ok || err != nil {
		t.Fatalf("stored plain value: %q %v %v", got, ok, err)
	}
	clock.wm = 1000
	if _, ok, _ := v.Get([]byte("k")); ok {
		t.Fatal("stored value live past its expiry")
	}
}

// A sweep examines at most limit entries per call, resumes after them,
// deletes only expired handle values (their deletes are dirty: changelog
// tombstones at the next checkpoint), and does nothing while the
// watermark is unknown.
func TestSweeperBoundedAndResumable(t *testing.T) {
	handleStores(t, func(t *testing.T, s Store) {
		clock := newFakeClock()
		v := NewValue(s, serde.Int64(), WithTTL(EventTimeTTL(100*time.Millisecond), clock))
		plain := NewValue(s, serde.Int64())
		// k00..k19: even keys written at t=0 (expire at 100), odd at t=50
		// (expire at 150); p0, p1 have no expiry; "raw" is not a handle value.
		for i := range 20 {
			clock.ts = int64(i%2) * 50
			if err := v.Set(fmt.Appendf(nil, "k%02d", i), int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		_ = plain.Set([]byte("p0"), 0)
		_ = plain.Set([]byte("p1"), 1)
		mustPut(t, s, "raw", "not an envelope")

		sw := NewSweeper(s, EventTime, clock)
		if n, err := sw.Sweep(100); n != 0 || err != nil {
			t.Fatalf("sweep with the watermark unknown deleted %d (%v)", n, err)
		}
		clock.wm = 120
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

		clock.wm = 150
		if n, err := sw.Sweep(100); n != 10 || err != nil {
			t.Fatalf("second pass deleted %d (%v), want 10", n, err)
		}
		if n, _ := sw.Sweep(100); n != 0 {
			t.Fatalf("third pass deleted %d, want 0", n)
		}
	})
}

func TestSweepDeletesAreTombstones(t *testing.T) {
	clock := newFakeClock()
	task := openMem(t).Task("0_0")
	s := task.Store("ttl")
	v := NewValue(s, serde.String(), WithTTL(ProcessingTimeTTL(time.Second), clock))
	_ = v.Set([]byte("a"), "1")
	clock.proc = 500
	_ = v.Set([]byte("b"), "2")
	if err := task.Apply(Checkpoint{ID: 1}); err != nil {
		t.Fatal(err)
	}
	clock.proc = 1000
	if n, err := NewSweeper(s, ProcessingTime, clock).Sweep(10); n != 1 || err != nil {
		t.Fatalf("sweep deleted %d (%v), want 1", n, err)
	}
	want := []dirtyRec{{Store: "ttl", Key: "a", Deleted: true}}
	if d := dirtyOf(t, task); !slices.Equal(d, want) {
		t.Fatalf("dirty after sweep = %v, want %v", d, want)
	}
}
