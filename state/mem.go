package state

import (
	"bytes"
	"sort"
)

// MemStore is an in-memory Store with no cache and no durability, for tests
// and the topology test driver. Like every Store it is not safe for
// concurrent use.
type MemStore struct {
	m map[string][]byte
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: make(map[string][]byte)} }

var _ Store = (*MemStore)(nil)

func (s *MemStore) Get(key []byte) ([]byte, error) {
	v, ok := s.m[string(key)]
	if !ok {
		return nil, ErrNotFound
	}
	return v, nil
}

func (s *MemStore) Put(key, value []byte) error {
	s.m[string(key)] = bytes.Clone(value)
	return nil
}

func (s *MemStore) Delete(key []byte) error {
	delete(s.m, string(key))
	return nil
}

func (s *MemStore) Scan(prefix []byte, fn func(key, value []byte) error) error {
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		if bytes.HasPrefix([]byte(k), prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn([]byte(k), s.m[k]); err != nil {
			return err
		}
	}
	return nil
}

// Len returns the number of keys.
func (s *MemStore) Len() int { return len(s.m) }

var _ FromScanner = (*MemStore)(nil)

// ScanFrom implements FromScanner.
func (s *MemStore) ScanFrom(prefix, start []byte, fn func(key, value []byte) error) error {
	return s.Scan(prefix, func(k, v []byte) error {
		if bytes.Compare(k, start) < 0 {
			return nil
		}
		return fn(k, v)
	})
}
