package topology

import (
	"errors"
	"fmt"
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

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
