package serde

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Serde turns values of T into bytes and back. Implementations must be safe
// for concurrent use (the built-in ones are stateless) and must not modify
// the slice passed to Decode. Whether they may keep references to it
// depends on where it comes from (see "Retaining decoded bytes" in the
// package documentation): a record's key or value yes, state no.
type Serde[T any] interface {
	Encode(v T) ([]byte, error)
	Decode(b []byte) (T, error)
}

// DecodeError says which serde failed and why. The engine routes records
// whose decode fails to the error policy (dead-letter topic by default).
type DecodeError struct {
	Serde string
	Err   error
}

// Error bounds the cause's text to MaxErrorText bytes: a decoder's error
// may quote the input (encoding/json quotes a number it cannot store
// whole), and error texts end up in logs and dead-letter headers.
func (e *DecodeError) Error() string {
	return "serde: " + e.Serde + " decode: " + TruncateText(e.Err.Error(), MaxErrorText)
}

// MaxErrorText bounds the cause's text in a DecodeError: 1 KiB.
const MaxErrorText = 1 << 10

// TruncateText returns s when it is at most max bytes, else its start,
// cut at a UTF-8 boundary, and a note of its length, all in at most max
// bytes (max >= 32). Logs, errors and dead letters bound texts with it, so
// that none quotes megabytes of a record.
func TruncateText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	note := "… (" + strconv.Itoa(len(s)) + " bytes, truncated)"
	end := max - len(note)
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + note
}
func (e *DecodeError) Unwrap() error { return e.Err }

// Bytes passes bytes through. Decode copies, so the result may be retained.
func Bytes() Serde[[]byte] { return bytesSerde{} }

type bytesSerde struct{}

func (bytesSerde) Encode(v []byte) ([]byte, error) { return v, nil }
func (bytesSerde) Decode(b []byte) ([]byte, error) {
	return bytes.Clone(b), nil // keeps nil (a tombstone) apart from empty
}

// String encodes a string as its UTF-8 bytes.
func String() Serde[string] { return stringSerde{} }

type stringSerde struct{}

func (stringSerde) Encode(v string) ([]byte, error) { return []byte(v), nil }
func (stringSerde) Decode(b []byte) (string, error) { return string(b), nil }

// Int64 encodes an int64 as 8 big-endian bytes (the encoding of Kafka's
// LongSerializer), so keys sort numerically for non-negative values.
func Int64() Serde[int64] { return int64Serde{} }

type int64Serde struct{}

func (int64Serde) Encode(v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v)), nil
}

func (int64Serde) Decode(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, &DecodeError{Serde: "int64", Err: fmt.Errorf("want 8 bytes, got %d", len(b))}
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// JSON encodes T with encoding/json. Decode rejects empty input and trailing
// data after the value.
func JSON[T any]() Serde[T] { return jsonSerde[T]{} }

type jsonSerde[T any] struct{}

func (jsonSerde[T]) Encode(v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("serde: json encode: %w", err)
	}
	return b, nil
}

func (jsonSerde[T]) Decode(b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return v, &DecodeError{Serde: "json", Err: err}
	}
	return v, nil
}

// ExcerptBytes is how much of a record's bytes Excerpt shows: 64.
const ExcerptBytes = 64

// Excerpt returns b as text for an error message: all of it when it is at
// most ExcerptBytes long, else its first ExcerptBytes (cut at a UTF-8
// boundary) and its length, as in `{"blob":"ccc… (900011 bytes)`. An error
// that quotes a record's bytes must go through it: errors end up in logs
// and dead-letter headers, which must never carry megabytes of input.
func Excerpt(b []byte) string {
	if len(b) <= ExcerptBytes {
		return string(b)
	}
	end := ExcerptBytes
	for end > 0 && !utf8.RuneStart(b[end]) {
		end--
	}
	return string(b[:end]) + "… (" + strconv.Itoa(len(b)) + " bytes)"
}
