package serde

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/linkedin/goavro/v2"
)

// AvroMapping maps a Go type to and from goavro's native form of an Avro
// record (map[string]any: "long" as int64, "int" as int32, "double" as
// float64, "string" as string, "bytes" as []byte, a non-null union value
// as map[string]any{"<type name>": v}, null as nil). It is how the typed
// Avro serdes stay free of reflection: the mapping is ordinary, checked Go
// code next to the schema it follows.
//
// Both functions must be safe for concurrent use (pure functions are).
type AvroMapping[T any] struct {
	// ToMap turns a value into a native record for encoding. Required
	// for Encode.
	ToMap func(v T) (map[string]any, error)
	// FromMap turns a decoded native record into a value. Required for
	// Decode. A record written with an older or newer schema (see
	// AvroRegistry) may lack fields or have extra ones: FromMap decides.
	FromMap func(m map[string]any) (T, error)
}

// Avro returns a Serde of generic Avro records (goavro's native form, see
// [AvroMapping]) in plain Avro binary encoding with schema: no header, no
// schema id. Writer and reader must agree on the schema out of band; for
// Kafka topics shared with other tools use [AvroRegistry], which writes
// the Schema Registry wire format. It returns an error if schema does not
// parse or is not a record.
//
// goavro sizes a decoded array or map by the block count the bytes
// declare, up to goavro.MaxBlockCount (2^31-1 by default), before it reads
// the items: a process that decodes untrusted input with array or map
// fields should lower goavro.MaxBlockCount in its main.
func Avro(schema string) (Serde[map[string]any], error) {
	c, err := recordCodec(schema)
	if err != nil {
		return nil, err
	}
	return avroPlain[map[string]any]{codec: c, m: identity}, nil
}

// AvroTyped is [Avro] for a Go type T mapped through m.
func AvroTyped[T any](schema string, m AvroMapping[T]) (Serde[T], error) {
	c, err := recordCodec(schema)
	if err != nil {
		return nil, err
	}
	return avroPlain[T]{codec: c, m: m}, nil
}

// identity is the mapping of the generic serdes.
var identity = AvroMapping[map[string]any]{
	ToMap:   func(m map[string]any) (map[string]any, error) { return m, nil },
	FromMap: func(m map[string]any) (map[string]any, error) { return m, nil },
}

// recordCodec compiles schema, which must be an Avro record.
func recordCodec(schema string) (*goavro.Codec, error) {
	c, err := goavro.NewCodec(schema)
	if err != nil {
		return nil, fmt.Errorf("serde: avro schema: %w", err)
	}
	if !isRecord(c) {
		return nil, fmt.Errorf("serde: avro schema: want a record schema, got %s", c.Schema())
	}
	return c, nil
}

func isRecord(c *goavro.Codec) bool {
	// goavro has no accessor for the type: read it from the canonical
	// form.
	var top struct {
		Type any `json:"type"`
	}
	s := c.CanonicalSchema()
	return strings.HasPrefix(s, "{") && json.Unmarshal([]byte(s), &top) == nil && top.Type == "record"
}

// avroPlain is the plain-binary Avro serde. goavro codecs are safe for
// concurrent use, and so is this.
type avroPlain[T any] struct {
	codec *goavro.Codec
	m     AvroMapping[T]
}

func (s avroPlain[T]) Encode(v T) ([]byte, error) {
	return encodeAvro(nil, s.codec, s.m, v)
}

func (s avroPlain[T]) Decode(b []byte) (T, error) {
	return decodeAvro(s.codec, s.m, b)
}

// encodeAvro appends the Avro binary encoding of v to dst.
func encodeAvro[T any](dst []byte, c *goavro.Codec, m AvroMapping[T], v T) ([]byte, error) {
	if m.ToMap == nil {
		return nil, fmt.Errorf("serde: avro encode: the mapping has no ToMap")
	}
	native, err := m.ToMap(v)
	if err != nil {
		return nil, fmt.Errorf("serde: avro encode: %w", err)
	}
	b, err := c.BinaryFromNative(dst, native)
	if err != nil {
		return nil, fmt.Errorf("serde: avro encode: %w", err)
	}
	return b, nil
}

// decodeAvro decodes one record that must fill b exactly.
func decodeAvro[T any](c *goavro.Codec, m AvroMapping[T], b []byte) (T, error) {
	var zero T
	if m.FromMap == nil {
		return zero, &DecodeError{Serde: "avro", Err: fmt.Errorf("the mapping has no FromMap")}
	}
	native, rest, err := c.NativeFromBinary(b)
	if err != nil {
		return zero, &DecodeError{Serde: "avro", Err: fmt.Errorf("body: %w", err)}
	}
	if len(rest) != 0 {
		return zero, &DecodeError{Serde: "avro", Err: fmt.Errorf("body: %d trailing bytes after the record", len(rest))}
	}
	rec, ok := native.(map[string]any)
	if !ok {
		return zero, &DecodeError{Serde: "avro", Err: fmt.Errorf("body: decoded %T, want a record", native)}
	}
	v, err := m.FromMap(rec)
	if err != nil {
		return zero, &DecodeError{Serde: "avro", Err: fmt.Errorf("mapping: %w", err)}
	}
	return v, nil
}
