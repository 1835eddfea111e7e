package state

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
)

// dirtyEntry is an uncommitted write: a value, or a delete.
type dirtyEntry struct {
	val []byte
	del bool
}

// taskStore is one named store of a Task: the Store the operators see.
// Like its Task it is used by the task's goroutine only.
type taskStore struct {
	t      *Task
	name   string
	prefix []byte // storePrefix(task, name)

	dirty map[string]dirtyEntry
	clean map[string][]byte // committed values, equal to Badger's

	// sorted caches the dirty keys in order while sortedOK; a write of a
	// new key clears sortedOK.
	sorted   []string
	sortedOK bool

	keybuf []byte // scratch for Badger keys in Get
}

var (
	_ Store       = (*taskStore)(nil)
	_ FromScanner = (*taskStore)(nil)
)

func (s *taskStore) entrySize(klen, vlen int) int64 {
	return int64(len(s.prefix) + klen + vlen + entryOverhead)
}

func (s *taskStore) fullKey(k string) []byte {
	out := make([]byte, 0, len(s.prefix)+len(k))
	return append(append(out, s.prefix...), k...)
}

func (s *taskStore) addClean(k string, v []byte) {
	size := s.entrySize(len(k), len(v))
	if size > s.t.db.cfg.TaskCacheBytes {
		return
	}
	s.dropClean(k)
	s.clean[k] = v
	s.t.cleanBytes += size
	s.t.evictClean()
}

func (s *taskStore) dropClean(k string) {
	if v, ok := s.clean[k]; ok {
		s.t.cleanBytes -= s.entrySize(len(k), len(v))
		delete(s.clean, k)
	}
}

// Get implements Store. Values read from Badger are copied out of it.
func (s *taskStore) Get(key []byte) ([]byte, error) {
	if err := s.t.usable(); err != nil {
		return nil, err
	}
	if e, ok := s.dirty[string(key)]; ok {
		if e.del {
			return nil, ErrNotFound
		}
		return e.val, nil
	}
	if v, ok := s.clean[string(key)]; ok {
		return v, nil
	}
	s.keybuf = append(append(s.keybuf[:0], s.prefix...), key...)
	var v []byte
	err := s.t.db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(s.keybuf)
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("state: get from store %q of task %q: %w", s.name, s.t.id, err)
	}
	if v == nil {
		v = []byte{}
	}
	s.addClean(string(key), v)
	return v, nil
}

// keyFits returns a *SizeError when key's Badger key is over Badger's
// limit.
func (s *taskStore) keyFits(key []byte) error {
	if n := len(s.prefix) + len(key); n > MaxKeyBytes {
		return &SizeError{Store: s.name, What: "key", Size: n, Limit: MaxKeyBytes}
	}
	return nil
}

// valueFits returns a *SizeError when value is over Config.MaxValueBytes.
func (s *taskStore) valueFits(value []byte) error {
	if limit := s.t.db.cfg.MaxValueBytes; len(value) > limit {
		return &SizeError{Store: s.name, What: "value", Size: len(value), Limit: limit}
	}
	return nil
}

// Put implements Store. A key or value the store cannot hold (see doc.go,
// "Size limits") is refused with a *SizeError before it reaches the cache,
// so it never reaches a changelog or Badger.
func (s *taskStore) Put(key, value []byte) error {
	if err := s.t.usable(); err != nil {
		return err
	}
	if err := s.keyFits(key); err != nil {
		return err
	}
	if err := s.valueFits(value); err != nil {
		return err
	}
	s.write(key, dirtyEntry{val: append([]byte{}, value...)})
	return nil
}

// Delete implements Store. The delete is recorded even if the key is
// absent, so it reaches the changelog as a tombstone; except for a key
// too large to store (see Put), which cannot be present: its delete
// changes nothing and writes nothing.
func (s *taskStore) Delete(key []byte) error {
	if err := s.t.usable(); err != nil {
		return err
	}
	if s.keyFits(key) != nil {
		return nil
	}
	s.write(key, dirtyEntry{del: true})
	return nil
}

func (s *taskStore) write(key []byte, e dirtyEntry) {
	t := s.t
	if old, ok := s.dirty[string(key)]; ok {
		t.dirtyBytes -= s.entrySize(len(key), len(old.val))
	} else {
		t.dirtyCount++
		s.sortedOK = false
		s.dropClean(string(key))
	}
	s.dirty[string(key)] = e
	t.dirtyBytes += s.entrySize(len(key), len(e.val))
	if t.dirtyBytes+t.cleanBytes > t.db.cfg.TaskCacheBytes {
		t.evictClean()
	}
}

// dirtyKeys returns the dirty keys in order. The slice is owned by s.
func (s *taskStore) dirtyKeys() []string {
	if !s.sortedOK {
		s.sorted = s.sorted[:0]
		for k := range s.dirty {
			s.sorted = append(s.sorted, k)
		}
		sort.Strings(s.sorted)
		s.sortedOK = true
	}
	return s.sorted
}

// Scan implements Store.
func (s *taskStore) Scan(prefix []byte, fn func(key, value []byte) error) error {
	return s.ScanFrom(prefix, nil, fn)
}

// ScanFrom implements FromScanner: Scan restricted to keys >= start. It
// merges the sorted dirty keys over a Badger prefix iterator: a dirty
// value replaces Badger's, a dirty delete hides it, dirty-only keys are
// included in order. Clean cache entries equal Badger's and are not read.
func (s *taskStore) ScanFrom(prefix, start []byte, fn func(key, value []byte) error) error {
	if err := s.t.usable(); err != nil {
		return err
	}
	from := prefix
	if bytes.Compare(start, prefix) > 0 {
		from = start
	}
	keys := s.dirtyKeys()
	i := sort.SearchStrings(keys, string(from))

	full := append(bytes.Clone(s.prefix), prefix...)
	seek := append(bytes.Clone(s.prefix), from...)
	var fnErr error
	err := s.t.db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: full, PrefetchValues: false})
		defer it.Close()
		it.Seek(seek)
		// sortedOK guards against fn writing to the store, which the
		// Store contract forbids; the loop then stops with an error
		// instead of reading a stale key list.
		for {
			if !s.sortedOK {
				return fmt.Errorf("state: scan of store %q: fn wrote to the store during Scan", s.name)
			}
			var dk string
			dOK := i < len(keys) && strings.HasPrefix(keys[i], string(prefix))
			if dOK {
				dk = keys[i]
			}
			bOK := it.Valid()
			var bk []byte
			if bOK {
				bk = it.Item().Key()[len(s.prefix):]
			}
			switch {
			case !dOK && !bOK:
				return nil
			case dOK && (!bOK || dk <= string(bk)):
				if bOK && dk == string(bk) {
					it.Next() // the dirty entry replaces Badger's
				}
				i++
				if e := s.dirty[dk]; !e.del {
					if fnErr = fn([]byte(dk), e.val); fnErr != nil {
						return fnErr
					}
				}
			default:
				if err := it.Item().Value(func(v []byte) error {
					fnErr = fn(bk, v)
					return fnErr
				}); err != nil {
					return err
				}
				it.Next()
			}
		}
	})
	if err != nil && fnErr == nil {
		return fmt.Errorf("state: scan store %q of task %q: %w", s.name, s.t.id, err)
	}
	return err
}
