package state

// Store is one named key-value store of one task: the view user operators
// and window operators read and write.
//
// Writes go to the task's write cache, never straight to disk; they become
// durable only when the engine applies the task's checkpoint (see Task).
// Reads see the cache first, then the committed state on disk.
//
// Threading: a Store belongs to one task and is called only from the
// goroutine that runs that task. It is not safe for concurrent use.
type Store interface {
	// Get returns the value for key, or ErrNotFound. The returned slice
	// is only valid until the next call on the Store; copy it to keep it.
	Get(key []byte) ([]byte, error)
	// Put sets key to value. The Store copies both slices.
	Put(key, value []byte) error
	// Delete removes key. Deleting an absent key is not an error.
	Delete(key []byte) error
	// Scan calls fn for every key with the given prefix, in ascending key
	// order, with cached writes merged over committed state (deleted keys
	// are skipped). fn must not call Put or Delete on this Store; the
	// slices passed to fn are only valid during the call. An error from fn
	// stops the scan and is returned.
	Scan(prefix []byte, fn func(key, value []byte) error) error
}

// FromScanner is an optional upgrade of Store: a Scan that starts at a key,
// so a long walk (such as a TTL Sweeper's) can resume where it stopped
// without reading the keys before. The task stores from DB and MemStore
// implement it.
//
// Threading: as for Store.
type FromScanner interface {
	// ScanFrom is Scan restricted to the keys >= start.
	ScanFrom(prefix, start []byte, fn func(key, value []byte) error) error
}
