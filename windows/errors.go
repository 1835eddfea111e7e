package windows

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors with more context are structs that unwrap to one
// of these; classify with errors.Is.
var (
	// ErrInvalidSpec is returned (wrapped in a *SpecError) when an assigner,
	// a Spec, an Aggregation or a Tracker option is invalid.
	ErrInvalidSpec = errors.New("windows: invalid spec")
	// ErrInvalidControl is returned (wrapped in a *ControlError) when a
	// control record cannot be decoded or is semantically invalid.
	ErrInvalidControl = errors.New("windows: invalid control record")
	// ErrCorruptState is returned when a window entry read from the Store
	// cannot be decoded.
	ErrCorruptState = errors.New("windows: corrupt window state")
)

// SpecError says which part of a configuration is invalid and why.
type SpecError struct {
	Field   string // e.g. "Hopping.advance", "Spec.Grace"
	Problem string
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("windows: invalid spec: %s: %s", e.Field, e.Problem)
}

// Unwrap returns ErrInvalidSpec.
func (e *SpecError) Unwrap() error { return ErrInvalidSpec }

func specErr(field, format string, args ...any) error {
	return &SpecError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// ControlError says why a control record was rejected.
type ControlError struct {
	Problem string
}

func (e *ControlError) Error() string {
	return "windows: invalid control record: " + e.Problem
}

// Unwrap returns ErrInvalidControl.
func (e *ControlError) Unwrap() error { return ErrInvalidControl }

// IsInvalidControl reports whether err says a control record was invalid.
// The engine sends such records to its error policy (dead-letter topic by
// default) instead of failing the task.
func IsInvalidControl(err error) bool { return errors.Is(err, ErrInvalidControl) }
