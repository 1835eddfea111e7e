package state

import (
	"bytes"
	"encoding/binary"
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

// ErrReadOnly is returned by Put and Delete of the Store CommittedView
// passes: interactive queries never write.
var ErrReadOnly = errors.New("state: read-only view of committed state")

// CommittedView calls fn with a read-only Store over one task's store as
// of one applied checkpoint: every Get and Scan fn makes sees the same
// committed state (one Badger read transaction), never uncommitted cache
// contents. Put and Delete return ErrReadOnly. The Store implements
// FromScanner and is valid only during fn. Like Committed it is safe for
// concurrent use; the HTTP server calls it while the task runs.
func (db *DB) CommittedView(task, store string, fn func(Store) error) error {
	if db.closed.Load() {
		return ErrClosed
	}
	return db.bdb.View(func(txn *badger.Txn) error {
		return fn(&committedView{txn: txn, prefix: storePrefix(task, store), name: task + "/" + store})
	})
}

// committedView is the Store of CommittedView.
type committedView struct {
	txn    *badger.Txn
	prefix []byte
	name   string
}

func (v *committedView) Get(key []byte) ([]byte, error) {
	item, err := v.txn.Get(append(bytes.Clone(v.prefix), key...))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("state: read %s/%q: %w", v.name, bytes.Clone(key), err)
	}
	return item.ValueCopy(nil)
}

func (v *committedView) Put(_, _ []byte) error { return ErrReadOnly }
func (v *committedView) Delete(_ []byte) error { return ErrReadOnly }

func (v *committedView) Scan(prefix []byte, fn func(key, value []byte) error) error {
	return v.ScanFrom(prefix, nil, fn)
}

func (v *committedView) ScanFrom(prefix, start []byte, fn func(key, value []byte) error) error {
	full := append(bytes.Clone(v.prefix), prefix...)
	seek := full
	if bytes.Compare(start, prefix) > 0 {
		seek = append(bytes.Clone(v.prefix), start...)
	}
	it := v.txn.NewIterator(badger.IteratorOptions{Prefix: full, PrefetchValues: false})
	defer it.Close()
	for it.Seek(seek); it.Valid(); it.Next() {
		item := it.Item()
		val, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("state: scan %s: %w", v.name, err)
		}
		if err := fn(item.Key()[len(v.prefix):], val); err != nil {
			return err
		}
	}
	return nil
}

// LivePayload decodes a value a typed handle wrote (see doc.go, "Value
// encoding"; for a Map, one entry) and returns its payload, with live
// false if it expired by now, the time in the handle's TTL domain. It
// judges expiry exactly as the handle's own reads do. hasNow false (an
// event-time TTL before the watermark is known) means nothing expired.
// A value with an expiry cannot be judged without a domain: domain 0
// with such a value returns ErrInvalidTTL.
func LivePayload(raw []byte, domain TimeDomain, now int64, hasNow bool) (payload []byte, live bool, err error) {
	payload, exp, has, err := decodeEnvelope(raw)
	if err != nil {
		return nil, false, err
	}
	if !has || !hasNow {
		return payload, true, nil
	}
	if domain != EventTime && domain != ProcessingTime {
		return nil, false, fmt.Errorf("%w: the value has an expiry but its store declares no TTL domain", ErrInvalidTTL)
	}
	return payload, now < exp, nil // as handleCfg.expired judges it
}

// ListPayload splits the payload of a List value into its elements'
// encodings.
func ListPayload(p []byte) ([][]byte, error) {
	var out [][]byte
	for len(p) > 0 {
		n, w := binary.Uvarint(p)
		if w <= 0 || n > uint64(len(p)-w) {
			return nil, fmt.Errorf("%w: truncated list element", ErrBadValue)
		}
		out = append(out, p[w:w+int(n)])
		p = p[w+int(n):]
	}
	return out, nil
}

// MapPrefix is the store-key prefix of the entries of key's Map: the
// entry of map key mk is MapPrefix(key) followed by mk's encoding.
func MapPrefix(key []byte) []byte { return mapPrefix(key) }

// SplitMapKey splits the store key of a Map entry into the handle key and
// the encoded map key.
func SplitMapKey(k []byte) (key, mk []byte, err error) {
	n, w := binary.Uvarint(k)
	if w <= 0 || n > uint64(len(k)-w) {
		return nil, nil, fmt.Errorf("%w: map entry key of %d bytes", ErrBadValue, len(k))
	}
	return k[w : w+int(n)], k[w+int(n):], nil
}
