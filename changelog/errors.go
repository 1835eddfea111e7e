package changelog

import (
	"errors"
	"fmt"
)

var (
	// ErrShortFrame is returned by DecodeValue for a non-nil value shorter
	// than the two-byte frame header.
	ErrShortFrame = errors.New("changelog: frame shorter than its header")
	// ErrBadMagic is returned by DecodeValue when the first byte is not
	// the frame magic byte: the record was not written by weir.
	ErrBadMagic = errors.New("changelog: bad frame magic byte")
	// ErrUnknownVersion is returned by DecodeValue for a frame version this
	// build does not read (written by a newer weir).
	ErrUnknownVersion = errors.New("changelog: unknown frame version")
	// ErrNoPartition is returned by ReadRange when the topic-partition
	// does not exist.
	ErrNoPartition = errors.New("changelog: no such topic-partition")
)

// RecordError says which changelog record could not be decoded.
type RecordError struct {
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("changelog: %s[%d] offset %d: %v", e.Topic, e.Partition, e.Offset, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }
