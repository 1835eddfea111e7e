package state

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Committed returns the value of key in a task's store as of the task's
// last applied checkpoint (never uncommitted cache contents), or
// ErrNotFound. Unlike Task, it is safe for concurrent use: the HTTP server
// answers interactive queries with it while the task runs.
func (db *DB) Committed(task, store string, key []byte) ([]byte, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	k := append(storePrefix(task, store), key...)
	var v []byte
	err := db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("state: read %s/%s/%q: %w", task, store, bytes.Clone(key), err)
	}
	return v, nil
}
