package topology

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	// ErrInvalid is wrapped by every error Build reports for a topology
	// that cannot run.
	ErrInvalid = errors.New("topology: invalid")
)

// OperatorError is an error returned by a user function, annotated with the
// operator that ran it. The engine hands it to the error policy.
type OperatorError struct {
	Operator string
	Err      error
}

func (e *OperatorError) Error() string {
	return fmt.Sprintf("topology: operator %q: %v", e.Operator, e.Err)
}
func (e *OperatorError) Unwrap() error { return e.Err }

// SourceError is a record that could not be decoded at a source.
type SourceError struct {
	Operator string
	Err      error
}

func (e *SourceError) Error() string {
	return fmt.Sprintf("topology: source %q: decode: %v", e.Operator, e.Err)
}
func (e *SourceError) Unwrap() error { return e.Err }

// EmitError is a bad record's error whose record is not one the task
// read: a window result, or a timer's, that failed on its way downstream
// (a sink could not encode it, a user function refused it) during
// Task.Advance. Record is what the error policy sets aside instead of an
// unrelated input record: Topic "" and Offset -1 (it was read from no
// topic), Partition the task's, the encoded key, and headers saying what
// it is (HeaderEmitOperator; a window result's window headers, with the
// accumulator's bytes as Value; a timer's HeaderTimerTime and
// HeaderTimerDomain). Err is the *OperatorError or *SourceError.
type EmitError struct {
	Record *kgo.Record
	Err    error
}

func (e *EmitError) Error() string { return e.Err.Error() }
func (e *EmitError) Unwrap() error { return e.Err }

// Headers of a record an EmitError sets aside.
const (
	// HeaderEmitOperator names the operator that emitted the record (an
	// Aggregate, a ProcessTimed).
	HeaderEmitOperator = "weir.emit.operator"
	// HeaderTimerTime is the time of the timer that fired (decimal epoch
	// ms) and HeaderTimerDomain its TimeDomain ("event-time" or
	// "processing-time").
	HeaderTimerTime   = "weir.timer.time"
	HeaderTimerDomain = "weir.timer.domain"
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
