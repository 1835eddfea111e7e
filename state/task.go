package state

import (
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	badger "github.com/dgraph-io/badger/v4"
)

// entryOverhead is what the cache charges per entry on top of the Badger
// key and value bytes: roughly the Go map slot, string and slice headers,
// and at least Badger's per-entry cost in a transaction (a 96-byte skiplist
// node), so a dirty set within the limit fits one transaction.
const entryOverhead = 112

// Entry is one store entry, as restored from a changelog.
type Entry struct {
	Store   string
	Key     []byte
	Value   []byte
	Deleted bool
}

// Task is one task's view of the DB: its named stores, its write cache and
// its checkpoint record.
//
// Threading: a Task is not safe for concurrent use. Only the goroutine
// that runs the task calls it and its Stores.
//
// Writes through a Store are dirty until Apply writes them to Badger in one
// batch with the checkpoint record, or Discard drops them. Reads see the
// dirty writes first, then the clean read cache, then Badger.
type Task struct {
	db     *DB
	id     string
	prefix []byte

	stores map[string]*taskStore

	dirtyBytes int64
	dirtyCount int
	cleanBytes int64

	cp       Checkpoint
	hasCP    bool
	cpLoaded bool

	// dropped is set by DB.DropTask and by DB.Task handing out a newer
	// Task for the same id; it is the only field another goroutine writes.
	dropped atomic.Bool
}

func newTask(db *DB, id string) *Task {
	return &Task{db: db, id: id, prefix: taskPrefix(id), stores: make(map[string]*taskStore)}
}

// ID returns the task id.
func (t *Task) ID() string { return t.id }

// usable reports why the task cannot be used, if it cannot.
func (t *Task) usable() error {
	if t.db.closed.Load() {
		return ErrClosed
	}
	if t.dropped.Load() {
		return fmt.Errorf("%w: %q", ErrTaskDropped, t.id)
	}
	return nil
}

// Store returns the task's store with the given name, creating its view on
// first use. The returned Store is the same for the same name.
func (t *Task) Store(name string) Store {
	return t.store(name)
}

func (t *Task) store(name string) *taskStore {
	s := t.stores[name]
	if s == nil {
		s = &taskStore{
			t:      t,
			name:   name,
			prefix: storePrefix(t.id, name),
			dirty:  make(map[string]dirtyEntry),
			clean:  make(map[string][]byte),
		}
		t.stores[name] = s
	}
	return s
}

// Checkpoint returns the task's last applied (or restored) checkpoint
// record, and false if it has none. It reads Badger once per Task.
func (t *Task) Checkpoint() (Checkpoint, bool, error) {
	if err := t.usable(); err != nil {
		return Checkpoint{}, false, err
	}
	if !t.cpLoaded {
		var raw []byte
		err := t.db.bdb.View(func(txn *badger.Txn) error {
			item, err := txn.Get(checkpointKey(t.id))
			if err != nil {
				return err
			}
			raw, err = item.ValueCopy(nil)
			return err
		})
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return Checkpoint{}, false, fmt.Errorf("state: read checkpoint of task %q: %w", t.id, err)
		default:
			cp, err := DecodeCheckpoint(raw)
			if err != nil {
				return Checkpoint{}, false, fmt.Errorf("state: task %q: %w", t.id, err)
			}
			t.cp, t.hasCP = cp, true
		}
		t.cpLoaded = true
	}
	return t.cp.clone(), t.hasCP, nil
}

// sortedStores returns the task's stores in name order.
func (t *Task) sortedStores() []*taskStore {
	out := make([]*taskStore, 0, len(t.stores))
	for _, s := range t.stores {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// ForEachDirty calls fn for every dirty write since the last Apply or
// Discard, sorted by store name then key. deleted reports a delete (value
// is nil). The slices are valid during the call only; fn must not write to
// the task's stores. An error from fn stops the walk and is returned.
func (t *Task) ForEachDirty(fn func(store string, key, value []byte, deleted bool) error) error {
	if err := t.usable(); err != nil {
		return err
	}
	for _, s := range t.sortedStores() {
		for _, k := range s.dirtyKeys() {
			e := s.dirty[k]
			if err := fn(s.name, []byte(k), e.val, e.del); err != nil {
				return err
			}
		}
	}
	return nil
}

// DirtyBytes returns the cache's estimate of the dirty writes' size: keys
// (with their Badger prefixes), values, and a fixed per-entry overhead.
func (t *Task) DirtyBytes() int64 { return t.dirtyBytes }

// Full reports whether the dirty set reached its limit, so the engine
// should force an early checkpoint: DirtyBytes() >= the task cache budget
// (Config.TaskCacheBytes), or the dirty set reached 90% of what one Badger
// transaction holds (15% of the memtable; see doc.go, "Memory"),
// whichever is smaller.
func (t *Task) Full() bool {
	return t.dirtyBytes >= t.db.dirtyLimit || t.dirtyCount >= t.db.countLimit
}

// Apply writes all dirty writes and the checkpoint record cp to Badger in
// one write batch (one transaction when the dirty set is within Full's
// limit; see doc.go, "Atomicity"). Afterwards the dirty set is empty; the
// written values stay in the cache as clean entries while they fit the
// budget. On error the dirty set is kept, so the engine may retry Apply.
func (t *Task) Apply(cp Checkpoint) error {
	if err := t.usable(); err != nil {
		return err
	}
	stores := t.sortedStores()
	chunks, err := t.db.writeBatch(func(set func(k, v []byte, del bool) error) error {
		// In key order: Badger's skiplist inserts are cheaper when
		// consecutive keys are close.
		for _, s := range stores {
			for _, k := range s.dirtyKeys() {
				e := s.dirty[k]
				if err := set(s.fullKey(k), e.val, e.del); err != nil {
					return err
				}
			}
		}
		return nil
	}, checkpointKey(t.id), cp.Encode())
	if err != nil {
		return fmt.Errorf("state: apply checkpoint %d of task %q: %w", cp.ID, t.id, err)
	}
	if chunks > 1 {
		t.db.log.Warn("state: dirty set exceeded one Badger transaction; applied in several, checkpoint record last",
			"task", t.id, "checkpoint", cp.ID, "transactions", chunks, "dirty_bytes", t.dirtyBytes)
	}
	for _, s := range stores {
		for k, e := range s.dirty {
			if !e.del {
				s.addClean(k, e.val)
			}
		}
		clear(s.dirty)
		s.sorted = s.sorted[:0]
	}
	t.dirtyBytes, t.dirtyCount = 0, 0
	t.cp, t.hasCP, t.cpLoaded = cp.clone(), true, true
	return nil
}

// Discard drops every dirty write (after an aborted transaction). Reads
// then see the committed state again.
func (t *Task) Discard() {
	for _, s := range t.stores {
		clear(s.dirty)
		s.sorted = s.sorted[:0]
	}
	t.dirtyBytes, t.dirtyCount = 0, 0
}

// Restore writes entries restored from the changelog straight to Badger,
// bypassing the cache, in one batch together with the checkpoint record cp
// (whose Changelogs offsets the engine has advanced past the entries).
// Large batches that exceed one Badger transaction are split, with the
// checkpoint record in the last, so a crash midway restarts the restore
// from the previous record. The task must have no dirty writes (ErrDirty).
func (t *Task) Restore(entries []Entry, cp Checkpoint) error {
	if err := t.usable(); err != nil {
		return err
	}
	if t.dirtyCount > 0 {
		return fmt.Errorf("state: restore task %q: %w", t.id, ErrDirty)
	}
	_, err := t.db.writeBatch(func(set func(k, v []byte, del bool) error) error {
		for i := range entries {
			e := &entries[i]
			s := t.store(e.Store)
			if err := set(s.fullKey(string(e.Key)), e.Value, e.Deleted); err != nil {
				return err
			}
			s.dropClean(string(e.Key))
		}
		return nil
	}, checkpointKey(t.id), cp.Encode())
	if err != nil {
		return fmt.Errorf("state: restore task %q to checkpoint %d: %w", t.id, cp.ID, err)
	}
	t.cp, t.hasCP, t.cpLoaded = cp.clone(), true, true
	return nil
}

// evictClean drops clean entries until the cache holds at most the budget.
// Go's randomised map iteration makes this random eviction.
func (t *Task) evictClean() {
	budget := t.db.cfg.TaskCacheBytes
	for _, s := range t.stores {
		if t.dirtyBytes+t.cleanBytes <= budget {
			return
		}
		for k := range s.clean {
			s.dropClean(k)
			if t.dirtyBytes+t.cleanBytes <= budget {
				return
			}
		}
	}
}

// Fits reports, as a *SizeError, whether the store can hold key and value:
// the Badger key (with the task and store prefix) at most MaxKeyBytes and
// the value at most Config.MaxValueBytes. The engine checks replayed
// changelog records with it.
func (t *Task) Fits(store string, key, value []byte) error {
	s := t.store(store)
	if err := s.keyFits(key); err != nil {
		return err
	}
	return s.valueFits(value)
}

// CheckSize returns the *SizeError that a Put of key and value to store of
// task id would return in a DB with the default Config.MaxValueBytes, or
// nil. The topologytest driver's stores apply it, so a topology's tests
// see the bad records the engine would.
func CheckSize(id, store string, key, value []byte) error {
	if n := len(storePrefix(id, store)) + len(key); n > MaxKeyBytes {
		return &SizeError{Store: store, What: "key", Size: n, Limit: MaxKeyBytes}
	}
	if len(value) > DefaultMaxValueBytes {
		return &SizeError{Store: store, What: "value", Size: len(value), Limit: DefaultMaxValueBytes}
	}
	return nil
}
