package state

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	badger "github.com/dgraph-io/badger/v4"
)

// DB is the process's one Badger database, shared by all its tasks.
//
// DB's own methods are safe for concurrent use. Each *Task it hands out is
// used by one goroutine (the task's).
type DB struct {
	bdb *badger.DB
	cfg resolved
	log *slog.Logger

	// dirtyLimit and countLimit bound a task's dirty set so that Apply
	// fits one Badger transaction (see Task.Full).
	dirtyLimit int64
	countLimit int

	closed atomic.Bool

	// dropMu orders DropTask against writes: Badger rejects writes with
	// ErrBlockedWrites while a DropPrefix runs, so Apply and Restore hold
	// it shared and DropTask holds it exclusively. It is held across
	// Badger I/O by design; nothing else takes it.
	dropMu sync.RWMutex

	mu struct {
		sync.Mutex
		tasks map[string]*Task // the Task currently handed out per id
	}
}

// Open validates cfg, opens (or creates) the Badger database and checks its
// on-disk format version.
func Open(cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := cfg.resolve()
	bdb, err := badger.Open(r.badgerOptions())
	if err != nil {
		return nil, fmt.Errorf("state: open badger in %q: %w", r.Dir, err)
	}
	db := &DB{bdb: bdb, cfg: r, log: r.Logger}
	db.mu.tasks = make(map[string]*Task)

	// Keep 10% head room for the checkpoint record and Badger's own
	// per-entry accounting.
	db.dirtyLimit = min(r.TaskCacheBytes, bdb.MaxBatchSize()*9/10)
	db.countLimit = int(bdb.MaxBatchCount() * 9 / 10)

	if err := db.checkFormat(); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) checkFormat() error {
	return db.bdb.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(formatKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(formatKey, []byte{formatVersion})
		}
		if err != nil {
			return fmt.Errorf("state: read format version: %w", err)
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("state: read format version: %w", err)
		}
		if !bytes.Equal(v, []byte{formatVersion}) {
			return fmt.Errorf("%w: database has format %v, this version reads %d", ErrFormat, v, formatVersion)
		}
		return nil
	})
}

// Close closes the database. Tasks must have stopped using their Task
// first. Close is idempotent: later calls return nil.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return nil
	}
	if err := db.bdb.Close(); err != nil {
		return fmt.Errorf("state: close badger: %w", err)
	}
	return nil
}

// Task returns a new view of task id's state with an empty write cache. The
// engine holds at most one Task per id at a time: a Task handed out earlier
// for the same id stops working (its methods return ErrTaskDropped).
func (db *DB) Task(id string) *Task {
	t := newTask(db, id)
	db.mu.Lock()
	if old := db.mu.tasks[id]; old != nil {
		old.dropped.Store(true)
	}
	db.mu.tasks[id] = t
	db.mu.Unlock()
	return t
}

// DropTask deletes everything task id has on disk (its stores and its
// checkpoint record) with one Badger prefix drop. A Task handed out for id
// stops working (ErrTaskDropped). DropTask blocks the process's writes
// (Apply, Restore of every task) while it runs.
func (db *DB) DropTask(id string) error {
	if db.closed.Load() {
		return ErrClosed
	}
	db.mu.Lock()
	if t := db.mu.tasks[id]; t != nil {
		t.dropped.Store(true)
		delete(db.mu.tasks, id)
	}
	db.mu.Unlock()

	db.dropMu.Lock()
	defer db.dropMu.Unlock()
	if err := db.bdb.DropPrefix(taskPrefix(id)); err != nil {
		return fmt.Errorf("state: drop task %q: %w", id, err)
	}
	return nil
}

// TaskIDs returns the ids of the tasks that have a checkpoint record on
// disk, in key order (shorter ids first). It seeks once per task, not once
// per key.
func (db *DB) TaskIDs() ([]string, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	var ids []string
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{nsTask}})
		defer it.Close()
		for it.Seek([]byte{nsTask}); it.Valid(); {
			key := it.Item().Key()
			id, n, err := parseTaskID(key)
			if err != nil {
				return fmt.Errorf("%w: %x", err, key)
			}
			// The checkpoint record sorts first among a task's keys.
			if len(key) == n+1 && key[n] == kindCheckpoint {
				ids = append(ids, id)
			}
			next := prefixSuccessor(key[:n])
			if next == nil {
				break
			}
			it.Seek(next)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state: list tasks: %w", err)
	}
	return ids, nil
}

// writeBatch writes entries (built by add) and then the record under
// lastKey in one Badger transaction. If they do not fit one transaction it
// commits them in several, in order, with lastKey in the last: a crash in
// between leaves the previous checkpoint record with some newer values,
// which the changelog replay from that checkpoint overwrites (see doc.go,
// "Atomicity").
func (db *DB) writeBatch(add func(set func(k, v []byte, del bool) error) error, lastKey, lastVal []byte) (chunks int, err error) {
	if db.closed.Load() {
		return 0, ErrClosed
	}
	db.dropMu.RLock()
	defer db.dropMu.RUnlock()

	txn := db.bdb.NewTransaction(true)
	defer func() { txn.Discard() }()
	chunks = 1
	set := func(k, v []byte, del bool) error {
		op := func() error {
			if del {
				return txn.Delete(k)
			}
			return txn.Set(k, v)
		}
		err := op()
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err := txn.Commit(); err != nil {
				return err
			}
			txn = db.bdb.NewTransaction(true)
			chunks++
			err = op()
		}
		return err
	}
	if err := add(set); err != nil {
		return chunks, err
	}
	if err := set(lastKey, lastVal, false); err != nil {
		return chunks, err
	}
	return chunks, txn.Commit()
}
