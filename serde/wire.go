package serde

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/linkedin/goavro/v2"
)

// The Confluent Schema Registry wire format: a magic byte 0, the writer's
// schema id as a 4-byte big-endian integer, then the body (Avro binary).
const (
	WireMagic     byte = 0
	WireHeaderLen      = 5
)

// ErrSchemaNotFound is what a SchemaRegistry's errors wrap when the
// registry does not know a schema id (or subject or version). A record
// carrying an unknown schema id is a bad record: its decode fails with a
// *DecodeError wrapping this.
var ErrSchemaNotFound = errors.New("serde: schema not found")

// AppendWire appends the wire-format header for schema id, then body, to
// dst.
func AppendWire(dst []byte, id int, body []byte) []byte {
	dst = append(dst, WireMagic)
	dst = binary.BigEndian.AppendUint32(dst, uint32(id))
	return append(dst, body...)
}

// ParseWire splits a wire-format value into its schema id and body. The
// body aliases b. A value too short for the header, with a magic byte
// other than 0 or with a negative schema id is a *DecodeError.
func ParseWire(b []byte) (id int, body []byte, err error) {
	if len(b) < WireHeaderLen {
		return 0, nil, &DecodeError{Serde: "avro", Err: fmt.Errorf("wire format: %d bytes, want at least %d (magic byte and schema id)", len(b), WireHeaderLen)}
	}
	if b[0] != WireMagic {
		return 0, nil, &DecodeError{Serde: "avro", Err: fmt.Errorf("wire format: magic byte 0x%02x, want 0x%02x (not written by a Schema Registry serializer)", b[0], WireMagic)}
	}
	id32 := int32(binary.BigEndian.Uint32(b[1:5]))
	if id32 < 0 {
		return 0, nil, &DecodeError{Serde: "avro", Err: fmt.Errorf("wire format: negative schema id %d", id32)}
	}
	return int(id32), b[WireHeaderLen:], nil
}

// SchemaRegistry is what the wire-format serdes need from a schema
// registry; *registry.Client (package serde/registry) implements it, with
// caching. Implementations must be safe for concurrent use.
type SchemaRegistry interface {
	// Register returns the id of schema under subject, registering it
	// first if the subject does not have it.
	Register(ctx context.Context, subject, schema string) (int, error)
	// SchemaByID returns the schema text with the given id; an unknown id
	// is an error wrapping ErrSchemaNotFound.
	SchemaByID(ctx context.Context, id int) (string, error)
}

// ValueSubject and KeySubject are the registry subjects of a topic's
// values and keys under the registry's default TopicNameStrategy.
func ValueSubject(topic string) string { return topic + "-value" }
func KeySubject(topic string) string   { return topic + "-key" }

// RegistryOpt configures AvroRegistry and AvroRegistryTyped.
type RegistryOpt interface{ apply(*registryCfg) }

type registryCfg struct {
	timeout time.Duration
}

func defaultRegistryCfg() registryCfg { return registryCfg{timeout: 10 * time.Second} }

type registryOptFunc func(*registryCfg)

func (f registryOptFunc) apply(c *registryCfg) { f(c) }

// RegistryTimeout bounds each registry look-up a serde makes (including
// retries of transient failures). Default 10s.
func RegistryTimeout(d time.Duration) RegistryOpt {
	return registryOptFunc(func(c *registryCfg) { c.timeout = d })
}

// AvroRegistry returns a Serde of generic Avro records in the Schema
// Registry wire format.
//
// Encode writes with schema, registered under subject (for a topic's
// values, ValueSubject(topic)) on first use; the id is kept. With schema
// "" the serde only decodes.
//
// Decode reads the schema id of each record, fetches the writer's schema
// from the registry once per id (the compiled codec is kept, so later
// records with that id make no registry call) and decodes the body with
// it. There is no reader-schema resolution: a record decodes with its
// writer's fields. A record whose magic byte, schema id (unknown to the
// registry) or body is wrong fails with a *DecodeError, which the engine's
// error policy sends to the dead-letter topic. A registry that cannot be
// reached is retried for RegistryTimeout; then Decode returns an error
// that is not a *DecodeError.
func AvroRegistry(reg SchemaRegistry, subject, schema string, opts ...RegistryOpt) (Serde[map[string]any], error) {
	return newAvroWire(reg, subject, schema, identity, opts)
}

// AvroRegistryTyped is AvroRegistry for a Go type T mapped through m.
func AvroRegistryTyped[T any](reg SchemaRegistry, subject, schema string, m AvroMapping[T], opts ...RegistryOpt) (Serde[T], error) {
	return newAvroWire(reg, subject, schema, m, opts)
}

func newAvroWire[T any](reg SchemaRegistry, subject, schema string, m AvroMapping[T], opts []RegistryOpt) (*avroWire[T], error) {
	cfg := defaultRegistryCfg()
	for _, o := range opts {
		o.apply(&cfg)
	}
	var errs []error
	if reg == nil {
		errs = append(errs, errors.New("serde: avro registry: no SchemaRegistry"))
	}
	if cfg.timeout <= 0 {
		errs = append(errs, fmt.Errorf("serde: avro registry: timeout %v: want > 0", cfg.timeout))
	}
	s := &avroWire[T]{reg: reg, subject: subject, schema: schema, m: m, cfg: cfg}
	s.mu.writerID = -1
	if schema != "" {
		if subject == "" {
			errs = append(errs, errors.New("serde: avro registry: a writer schema needs a subject (e.g. serde.ValueSubject(topic))"))
		}
		c, err := recordCodec(schema)
		if err != nil {
			errs = append(errs, err)
		}
		s.writer = c
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// maxNotFound bounds the negative cache of unknown schema ids.
const maxNotFound = 1024

type avroWire[T any] struct {
	reg     SchemaRegistry
	subject string
	schema  string
	m       AvroMapping[T]
	cfg     registryCfg
	writer  *goavro.Codec

	mu struct {
		sync.Mutex
		writerID int // -1 until registered
		notFound int // entries in notFound
	}
	// codecs caches compiled codecs by schema id (int -> *goavro.Codec);
	// notFound the ids the registry did not know (int -> struct{}).
	codecs   sync.Map
	notFound sync.Map
}

func (s *avroWire[T]) Encode(v T) ([]byte, error) {
	if s.writer == nil {
		return nil, errors.New("serde: avro encode: this serde has no writer schema (decode only)")
	}
	id, err := s.id()
	if err != nil {
		return nil, err
	}
	return encodeAvro(AppendWire(make([]byte, 0, 64), id, nil), s.writer, s.m, v)
}

// id registers the writer schema on first use. Concurrent first uses may
// each register it (registering is idempotent); the lock is not held
// across the call.
func (s *avroWire[T]) id() (int, error) {
	s.mu.Lock()
	id := s.mu.writerID
	s.mu.Unlock()
	if id >= 0 {
		return id, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
	defer cancel()
	id, err := s.reg.Register(ctx, s.subject, s.schema)
	if err != nil {
		return 0, fmt.Errorf("serde: avro encode: register schema under %q: %w", s.subject, err)
	}
	s.codecs.Store(id, s.writer)
	s.mu.Lock()
	s.mu.writerID = id
	s.mu.Unlock()
	return id, nil
}

func (s *avroWire[T]) Decode(b []byte) (T, error) {
	var zero T
	id, body, err := ParseWire(b)
	if err != nil {
		return zero, err
	}
	c, err := s.codec(id)
	if err != nil {
		return zero, err
	}
	return decodeAvro(c, s.m, body)
}

// codec returns the compiled writer schema of id, from the cache or the
// registry.
func (s *avroWire[T]) codec(id int) (*goavro.Codec, error) {
	if c, ok := s.codecs.Load(id); ok {
		return c.(*goavro.Codec), nil
	}
	if _, ok := s.notFound.Load(id); ok {
		return nil, &DecodeError{Serde: "avro", Err: fmt.Errorf("schema id %d: %w", id, ErrSchemaNotFound)}
	}
	text, err := s.fetch(id)
	if errors.Is(err, ErrSchemaNotFound) {
		s.mu.Lock()
		if s.mu.notFound < maxNotFound {
			s.mu.notFound++
			s.notFound.Store(id, struct{}{})
		}
		s.mu.Unlock()
		return nil, &DecodeError{Serde: "avro", Err: fmt.Errorf("schema id %d: %w", id, err)}
	}
	if err != nil {
		return nil, fmt.Errorf("serde: avro decode: schema id %d: registry unavailable: %w", id, err)
	}
	c, err := recordCodec(text)
	if err != nil {
		return nil, &DecodeError{Serde: "avro", Err: fmt.Errorf("schema id %d: %w", id, err)}
	}
	actual, _ := s.codecs.LoadOrStore(id, c)
	return actual.(*goavro.Codec), nil
}

// fetch asks the registry for schema id, retrying failures other than
// "not found" with backoff until the timeout.
func (s *avroWire[T]) fetch(id int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
	defer cancel()
	backoff := 50 * time.Millisecond
	for {
		text, err := s.reg.SchemaByID(ctx, id)
		if err == nil || errors.Is(err, ErrSchemaNotFound) {
			return text, err
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}
