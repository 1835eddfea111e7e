package state

import "errors"

// ErrNotFound is returned by Get when a key has no value.
var ErrNotFound = errors.New("state: not found")
