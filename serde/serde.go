package serde

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
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

// JSON encodes T with encoding/json. Decode refuses, with a *DecodeError:
//
//   - empty input and trailing data after the value;
//   - input that is not valid UTF-8 (encoding/json would replace each bad
//     byte with U+FFFD, so distinct values would decode as one);
//   - a JSON type that does not fit the Go type (true is not a string;
//     encoding/json never converts);
//   - when T is a struct or a pointer to one: a value without a field
//     tagged `weir:"required"`, or with null for it (encoding/json leaves
//     the Go zero value in both cases, which reads like real data). The
//     tag applies to T's own fields; it names the field as encoding/json
//     does (the json tag's name, else the Go name, matched without regard
//     to case).
//
// A misused weir tag (another value, an unexported, embedded or json:"-"
// field, a required field in an embedded struct) makes every Encode and
// Decode fail with an error naming the field.
func JSON[T any]() Serde[T] {
	req, err := requiredFields(reflect.TypeFor[T]())
	return jsonSerde[T]{req: req, err: err}
}

type jsonSerde[T any] struct {
	req *required // nil when T has no required fields
	err error     // a misused weir tag
}

func (s jsonSerde[T]) Encode(v T) ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("serde: json encode: %w", err)
	}
	return b, nil
}

func (s jsonSerde[T]) Decode(b []byte) (T, error) {
	var v T
	if s.err != nil {
		return v, s.err
	}
	if !utf8.Valid(b) {
		return v, &DecodeError{Serde: "json", Err: invalidUTF8(b)}
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, &DecodeError{Serde: "json", Err: boundQuote(err)}
	}
	if s.req != nil {
		if err := s.req.check(b); err != nil {
			var zero T
			return zero, &DecodeError{Serde: "json", Err: err}
		}
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

// boundQuote cuts what err quotes of the input to ExcerptBytes (see Excerpt):
// encoding/json puts a mistyped number's whole text in its error, and a
// dead letter's error header must not repeat a huge value.
func boundQuote(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		te.Value = Excerpt([]byte(te.Value))
	}
	return err
}

// invalidUTF8 says where b stops being UTF-8. It quotes no input.
func invalidUTF8(b []byte) error {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return fmt.Errorf("input is not valid UTF-8 (byte %d of %d)", i, len(b))
		}
		i += n
	}
	return errors.New("input is not valid UTF-8")
}

// required checks a JSON object for the fields of a struct tagged
// `weir:"required"`: it decodes the object a second time into a struct
// (made with reflect.StructOf) that has only those fields, with their Go
// names and json tags and the type json.RawMessage, so encoding/json
// matches names exactly as it did for T.
type required struct {
	shadow reflect.Type
	names  []string // JSON names, in field order
}

// requiredFields returns nil, nil when t has no required fields.
func requiredFields(t reflect.Type) (*required, error) {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, nil
	}
	var (
		fields   []reflect.StructField
		names    []string
		problems []string
	)
	for i := range t.NumField() {
		f := t.Field(i)
		tag, tagged := f.Tag.Lookup("weir")
		if f.Anonymous && !tagged {
			if inner := embeddedRequired(f.Type); inner != "" {
				problems = append(problems, fmt.Sprintf("field %s: required field %s of an embedded struct is not supported (name the struct field)", f.Name, inner))
			}
			continue
		}
		if !tagged {
			continue
		}
		if tag != "required" {
			problems = append(problems, fmt.Sprintf("field %s: unknown weir tag %q (want \"required\")", f.Name, tag))
			continue
		}
		jsonTag := f.Tag.Get("json")
		name, _, _ := strings.Cut(jsonTag, ",")
		switch {
		case jsonTag == "-":
			problems = append(problems, fmt.Sprintf("field %s: required but not in JSON (json:\"-\")", f.Name))
			continue
		case !f.IsExported():
			problems = append(problems, fmt.Sprintf("field %s: required but unexported", f.Name))
			continue
		case f.Anonymous:
			problems = append(problems, fmt.Sprintf("field %s: required on an embedded field is not supported", f.Name))
			continue
		case name == "":
			name = f.Name
		}
		fields = append(fields, reflect.StructField{
			Name: f.Name,
			Type: reflect.TypeFor[json.RawMessage](),
			Tag:  reflect.StructTag("json:" + strconv.Quote(jsonTag)),
		})
		names = append(names, name)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("serde: json: type %s: %s", t, strings.Join(problems, "; "))
	}
	if len(fields) == 0 {
		return nil, nil
	}
	return &required{shadow: reflect.StructOf(fields), names: names}, nil
}

// embeddedRequired returns the name of a required field of an embedded
// struct type, or "".
func embeddedRequired(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	for i := range t.NumField() {
		if _, ok := t.Field(i).Tag.Lookup("weir"); ok {
			return t.Field(i).Name
		}
	}
	return ""
}

// check reports the first required field b lacks or has as null. b has
// already been decoded into T, so it is one valid JSON value.
func (r *required) check(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return fmt.Errorf("null, want an object with the required field %q", r.names[0])
	}
	p := reflect.New(r.shadow)
	if err := json.Unmarshal(b, p.Interface()); err != nil {
		return err // cannot happen: b decoded into T
	}
	v := p.Elem()
	for i, name := range r.names {
		switch raw := v.Field(i).Bytes(); {
		case len(raw) == 0:
			return fmt.Errorf("required field %q is missing", name)
		case string(raw) == "null":
			return fmt.Errorf("required field %q is null", name)
		}
	}
	return nil
}
