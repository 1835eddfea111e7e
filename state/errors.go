package state

import (
	"errors"
	"fmt"
)

// ErrNotFound is returned by Get when a key has no value.
var ErrNotFound = errors.New("state: not found")

// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
var ErrInvalidConfig = errors.New("state: invalid config")

// ErrClosed is returned by operations on a DB, or on a Task or Store of a
// DB, after DB.Close.
var ErrClosed = errors.New("state: database closed")

// ErrTaskDropped is returned by operations on a Task (or one of its Stores)
// after DB.DropTask dropped its state, or after DB.Task handed out a newer
// Task for the same id.
var ErrTaskDropped = errors.New("state: task dropped or replaced")

// ErrDirty is returned by Task.Restore when the task has uncommitted writes;
// Apply or Discard them first.
var ErrDirty = errors.New("state: task has uncommitted writes")

// ErrBadCheckpoint is wrapped by DecodeCheckpoint for bytes that are not a
// checkpoint record.
var ErrBadCheckpoint = errors.New("state: bad checkpoint record")

// ErrBadValue is wrapped when a stored value is not in the typed-handle
// value encoding (see doc.go, "Value encoding").
var ErrBadValue = errors.New("state: bad handle value encoding")

// ErrInvalidTTL is returned by every method of a handle constructed with an
// invalid WithTTL option (the zero TTL, a duration under 1ms, a nil clock).
var ErrInvalidTTL = errors.New("state: invalid TTL")

// ErrNoEventTime is returned by a write through a handle with an
// event-time TTL when its Clock knows no event time: no record is being
// processed (a processing-time timer) and the watermark is unknown.
var ErrNoEventTime = errors.New("state: event-time TTL: the write has no event time (no record timestamp, watermark unknown)")

// ErrFormat is returned by Open for a directory written in an on-disk
// format this version does not read.
var ErrFormat = errors.New("state: unsupported on-disk format")

// ErrTooLarge is wrapped by *SizeError.
var ErrTooLarge = errors.New("state: entry too large")

// SizeError is returned by a Store's Put for a key or value the store
// cannot hold (see doc.go, "Size limits"), and by Task.Fits. Nothing is
// written: the record that made the write is bad, for the error policy,
// and the entry never reaches the write cache, a changelog or Badger.
type SizeError struct {
	Store string // the store's name
	What  string // "key" or "value"
	Size  int    // bytes; for a key, the Badger key with its task and store prefix
	Limit int    // the limit Size exceeds
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("state: store %q: %s of %d bytes exceeds the limit of %d bytes", e.Store, e.What, e.Size, e.Limit)
}

// Unwrap returns ErrTooLarge.
func (e *SizeError) Unwrap() error { return ErrTooLarge }
