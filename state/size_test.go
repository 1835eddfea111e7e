package state

import (
	"bytes"
	"errors"
	"testing"
)

// TestPutRefusesWhatBadgerCannotHold writes a key whose Badger key (task
// and store prefix included) is one byte over Badger's limit, and a value
// one byte over the value limit: both Puts fail with a *SizeError naming
// the store, nothing reaches the dirty set (so nothing reaches a
// changelog), and Apply still succeeds. Keys and values exactly at the
// limits are stored.
func TestPutRefusesWhatBadgerCannotHold(t *testing.T) {
	dir := t.TempDir()
	db := openDir(t, dir)
	task := db.Task("0_3")
	s := task.Store("count-store")
	prefix := len(storePrefix("0_3", "count-store"))
	fit := bytes.Repeat([]byte("k"), MaxKeyBytes-prefix)
	over := bytes.Repeat([]byte("k"), MaxKeyBytes-prefix+1)

	var se *SizeError
	err := s.Put(over, []byte("v"))
	if !errors.As(err, &se) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put of a %d-byte key (Badger key %d bytes): err %v, want a *SizeError", len(over), len(over)+prefix, err)
	}
	if se.Store != "count-store" || se.What != "key" || se.Size != MaxKeyBytes+1 || se.Limit != MaxKeyBytes {
		t.Errorf("SizeError %+v, want store count-store, key, size %d, limit %d", *se, MaxKeyBytes+1, MaxKeyBytes)
	}
	if err := s.Put([]byte("v"), make([]byte, DefaultMaxValueBytes+1)); !errors.As(err, &se) || se.What != "value" || se.Size != DefaultMaxValueBytes+1 || se.Limit != DefaultMaxValueBytes {
		t.Fatalf("Put of a %d-byte value: err %v, want a *SizeError for the value", DefaultMaxValueBytes+1, err)
	}
	// A delete of a key that cannot be stored changes nothing and writes
	// no tombstone.
	if err := s.Delete(over); err != nil {
		t.Fatalf("Delete of an oversize key: %v", err)
	}
	if _, err := s.Get(over); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of an oversize key: %v, want ErrNotFound", err)
	}
	if task.DirtyBytes() != 0 {
		t.Fatalf("dirty bytes %d after refused writes, want 0", task.DirtyBytes())
	}

	bigVal := make([]byte, DefaultMaxValueBytes)
	mustPutBytes(t, s, fit, []byte("at the key limit"))
	mustPutBytes(t, s, []byte("v"), bigVal)
	var dirty int
	if err := task.ForEachDirty(func(_ string, _, _ []byte, _ bool) error { dirty++; return nil }); err != nil {
		t.Fatal(err)
	}
	if dirty != 2 {
		t.Fatalf("%d dirty entries, want 2 (the two that fit)", dirty)
	}
	if err := task.Apply(Checkpoint{ID: 1}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := task.Fits("count-store", over, nil); !errors.As(err, &se) {
		t.Errorf("Fits of an oversize key: %v, want a *SizeError", err)
	}
	if err := task.Fits("count-store", fit, bigVal); err != nil {
		t.Errorf("Fits at both limits: %v", err)
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDir(t, dir)
	task = db.Task("0_3")
	s = task.Store("count-store")
	wantGet(t, s, string(fit), "at the key limit")
	if got, err := s.Get([]byte("v")); err != nil || len(got) != DefaultMaxValueBytes {
		t.Fatalf("Get of the value at the limit: %d bytes, %v", len(got), err)
	}
}

// TestMaxValueBytesConfig: a smaller Config.MaxValueBytes is the limit
// Put enforces; Validate refuses a negative one.
func TestMaxValueBytesConfig(t *testing.T) {
	db := openMem(t, func(c *Config) { c.MaxValueBytes = 100 })
	task := db.Task("0_0")
	s := task.Store("s")
	mustPutBytes(t, s, []byte("a"), make([]byte, 100))
	var se *SizeError
	if err := s.Put([]byte("b"), make([]byte, 101)); !errors.As(err, &se) || se.Limit != 100 {
		t.Fatalf("Put of 101 bytes with MaxValueBytes 100: %v", err)
	}
	cfg := DefaultConfig()
	cfg.InMemory = true
	cfg.MaxValueBytes = -1
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate with MaxValueBytes -1: %v", err)
	}
}

func mustPutBytes(t testing.TB, s Store, k, v []byte) {
	t.Helper()
	if err := s.Put(k, v); err != nil {
		t.Fatalf("Put(%d-byte key, %d-byte value): %v", len(k), len(v), err)
	}
}
