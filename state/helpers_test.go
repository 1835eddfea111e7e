package state

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func openMem(t testing.TB, mod ...func(*Config)) *DB {
	t.Helper()
	cfg := DefaultConfig()
	cfg.InMemory = true
	cfg.Logger = quietLogger()
	for _, m := range mod {
		m(&cfg)
	}
	db, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func openDir(t testing.TB, dir string, mod ...func(*Config)) *DB {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.Logger = quietLogger()
	for _, m := range mod {
		m(&cfg)
	}
	db, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func mustPut(t testing.TB, s Store, k, v string) {
	t.Helper()
	if err := s.Put([]byte(k), []byte(v)); err != nil {
		t.Fatalf("Put(%q): %v", k, err)
	}
}

func mustDelete(t testing.TB, s Store, k string) {
	t.Helper()
	if err := s.Delete([]byte(k)); err != nil {
		t.Fatalf("Delete(%q): %v", k, err)
	}
}

// wantGet asserts s.Get(k) returns v; want "" with absent=true for ErrNotFound.
func wantGet(t testing.TB, s Store, k, v string) {
	t.Helper()
	got, err := s.Get([]byte(k))
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", k, err, v)
	}
	if string(got) != v {
		t.Fatalf("Get(%q) = %q, want %q", k, got, v)
	}
}

func wantAbsent(t testing.TB, s Store, k string) {
	t.Helper()
	got, err := s.Get([]byte(k))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", k, got, err)
	}
}

// scanAll returns "k=v" for every entry Scan(prefix) yields.
func scanAll(t testing.TB, s Store, prefix string) []string {
	t.Helper()
	var out []string
	if err := s.Scan([]byte(prefix), func(k, v []byte) error {
		out = append(out, fmt.Sprintf("%s=%s", k, v))
		return nil
	}); err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	return out
}

func wantStrings(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

type dirtyRec struct {
	Store, Key, Value string
	Deleted           bool
}

func dirtyOf(t testing.TB, task *Task) []dirtyRec {
	t.Helper()
	var out []dirtyRec
	if err := task.ForEachDirty(func(store string, k, v []byte, del bool) error {
		out = append(out, dirtyRec{store, string(k), string(v), del})
		return nil
	}); err != nil {
		t.Fatalf("ForEachDirty: %v", err)
	}
	return out
}

// fakeClock is a Clock the test sets: ts is the record's timestamp, wm
// the watermark, proc the wall clock (epoch ms). It records the sweeps
// scheduled on it.
type fakeClock struct {
	ts, wm, proc int64
	sweeps       []TimeDomain
}

func newFakeClock() *fakeClock { return &fakeClock{ts: UnknownTime, wm: UnknownTime} }

func (c *fakeClock) Timestamp() int64          { return c.ts }
func (c *fakeClock) Watermark() int64          { return c.wm }
func (c *fakeClock) ProcessingTime() time.Time { return time.UnixMilli(c.proc) }

func (c *fakeClock) ScheduleSweep(_ Store, d TimeDomain) { c.sweeps = append(c.sweeps, d) }
