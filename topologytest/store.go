package topologytest

import (
	"bytes"
	"sort"

	"github.com/weirstream/weir/state"
)

// memStore is one task's store: committed state (what Badger holds in the
// engine) under a write cache of uncommitted writes, like state.Task. It
// is used on the driver's goroutine only.
type memStore struct {
	task, name string // for the size check (state.CheckSize)
	committed  map[string][]byte
	dirty      map[string]dirtyVal
}

type dirtyVal struct {
	v   []byte
	del bool
}

func newMemStore(task, name string) *memStore {
	return &memStore{task: task, name: name, committed: make(map[string][]byte), dirty: make(map[string]dirtyVal)}
}

var (
	_ state.Store       = (*memStore)(nil)
	_ state.FromScanner = (*memStore)(nil)
)

func (s *memStore) Get(key []byte) ([]byte, error) {
	if d, ok := s.dirty[string(key)]; ok {
		if d.del {
			return nil, state.ErrNotFound
		}
		return d.v, nil
	}
	v, ok := s.committed[string(key)]
	if !ok {
		return nil, state.ErrNotFound
	}
	return v, nil
}

// Put refuses, as the engine's stores do, a key or value too large to
// store (a *state.SizeError).
func (s *memStore) Put(key, value []byte) error {
	if err := state.CheckSize(s.task, s.name, key, value); err != nil {
		return err
	}
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	s.dirty[string(key)] = dirtyVal{v: v}
	return nil
}

// Delete of a key too large to store is a no-op, as in the engine.
func (s *memStore) Delete(key []byte) error {
	if state.CheckSize(s.task, s.name, key, nil) != nil {
		return nil
	}
	s.dirty[string(key)] = dirtyVal{del: true}
	return nil
}

func (s *memStore) Scan(prefix []byte, fn func(key, value []byte) error) error {
	return s.ScanFrom(prefix, nil, fn)
}

func (s *memStore) ScanFrom(prefix, start []byte, fn func(key, value []byte) error) error {
	seen := make(map[string]struct{})
	var keys []string
	add := func(k string) {
		if !bytes.HasPrefix([]byte(k), prefix) || bytes.Compare([]byte(k), start) < 0 {
			return
		}
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			keys = append(keys, k)
		}
	}
	for k := range s.committed {
		add(k)
	}
	for k := range s.dirty {
		add(k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := s.Get([]byte(k))
		if err != nil {
			continue // deleted in the cache
		}
		if err := fn([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}

// dirtyEntries returns the uncommitted writes in key order.
func (s *memStore) dirtyEntries() []string {
	keys := make([]string, 0, len(s.dirty))
	for k := range s.dirty {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// commit applies the uncommitted writes to the committed state.
func (s *memStore) commit() {
	for k, d := range s.dirty {
		if d.del {
			delete(s.committed, k)
		} else {
			s.committed[k] = d.v
		}
	}
	clear(s.dirty)
}

// discard drops the uncommitted writes.
func (s *memStore) discard() { clear(s.dirty) }

// len returns the number of keys, uncommitted writes included.
func (s *memStore) len() int {
	n := 0
	s.Scan(nil, func(_, _ []byte) error { n++; return nil }) //nolint:errcheck // fn never fails
	return n
}
