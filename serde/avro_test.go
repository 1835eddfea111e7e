package serde_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/serde/registry"
	"github.com/weirstream/weir/serde/registry/registrytest"
)

const viewSchema = `{
  "type": "record", "name": "PageView", "namespace": "weir.test",
  "fields": [
    {"name": "user", "type": "string"},
    {"name": "page", "type": "string"},
    {"name": "ts", "type": "long"},
    {"name": "referrer", "type": ["null", "string"], "default": null}
  ]
}`

// viewSchemaV2 adds a field with a default (a compatible evolution).
const viewSchemaV2 = `{
  "type": "record", "name": "PageView", "namespace": "weir.test",
  "fields": [
    {"name": "user", "type": "string"},
    {"name": "page", "type": "string"},
    {"name": "ts", "type": "long"},
    {"name": "referrer", "type": ["null", "string"], "default": null},
    {"name": "ms", "type": "int", "default": 0}
  ]
}`

type pageView struct {
	User, Page string
	TS         int64
	Referrer   *string
}

var viewMapping = serde.AvroMapping[pageView]{
	ToMap: func(v pageView) (map[string]any, error) {
		m := map[string]any{"user": v.User, "page": v.Page, "ts": v.TS, "referrer": nil}
		if v.Referrer != nil {
			m["referrer"] = map[string]any{"string": *v.Referrer}
		}
		return m, nil
	},
	FromMap: func(m map[string]any) (pageView, error) {
		var v pageView
		var ok bool
		if v.User, ok = m["user"].(string); !ok {
			return v, fmt.Errorf("user is %T", m["user"])
		}
		if v.Page, ok = m["page"].(string); !ok {
			return v, fmt.Errorf("page is %T", m["page"])
		}
		if v.TS, ok = m["ts"].(int64); !ok {
			return v, fmt.Errorf("ts is %T", m["ts"])
		}
		if u, ok := m["referrer"].(map[string]any); ok {
			s, _ := u["string"].(string)
			v.Referrer = &s
		}
		return v, nil
	},
}

func ptr(s string) *string { return &s }

func TestAvroGenericRoundTrip(t *testing.T) {
	s, err := serde.Avro(viewSchema)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []map[string]any{
		{"user": "u1", "page": "/a", "ts": int64(1700000000123), "referrer": nil},
		{"user": "", "page": "grüße", "ts": int64(-1), "referrer": map[string]any{"string": "https://x"}},
	} {
		roundTrip(t, s, v, nil)
	}
	// Avro binary: zigzag varints and length-prefixed strings.
	b, err := s.Encode(map[string]any{"user": "a", "page": "b", "ts": int64(1), "referrer": nil})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{2, 'a', 2, 'b', 2, 0}; !bytes.Equal(b, want) {
		t.Errorf("Encode = % x, want % x", b, want)
	}
}

func TestAvroTypedRoundTrip(t *testing.T) {
	s, err := serde.AvroTyped(viewSchema, viewMapping)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []pageView{
		{User: "u1", Page: "/a", TS: 1700000000123},
		{User: "u2", Page: "/b", TS: 5, Referrer: ptr("https://example.com")},
		{},
	} {
		roundTrip(t, s, v, nil)
	}
}

func TestAvroSchemaErrors(t *testing.T) {
	for _, schema := range []string{``, `{`, `"string"`, `{"type":"array","items":{"type":"record","name":"R","fields":[]}}`, `{"type":"record","name":"R","fields":[{"name":"x","type":"nope"}]}`} {
		if _, err := serde.Avro(schema); err == nil {
			t.Errorf("Avro(%q) succeeded, want an error", schema)
		}
	}
}

func TestAvroEncodeErrors(t *testing.T) {
	s, _ := serde.Avro(viewSchema)
	_, err := s.Encode(map[string]any{"user": "u"}) // missing fields
	if err == nil || !strings.HasPrefix(err.Error(), "serde: avro encode: ") {
		t.Errorf("Encode(missing fields) = %v, want an avro encode error", err)
	}
	var de *serde.DecodeError
	if errors.As(err, &de) {
		t.Errorf("an encode failure is a *DecodeError: %v", err)
	}
}

func TestAvroBodyErrors(t *testing.T) {
	s, _ := serde.AvroTyped(viewSchema, viewMapping)
	good, _ := s.Encode(pageView{User: "u", Page: "p", TS: 1})
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(append([]byte(nil), good...), 0)},
		{"bad union index", []byte{2, 'a', 2, 'b', 2, 8}},
		{"negative length", []byte{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Decode(tc.in)
			var de *serde.DecodeError
			if !errors.As(err, &de) || de.Serde != "avro" {
				t.Fatalf("Decode(% x) = %v (%T), want an avro *serde.DecodeError", tc.in, err, err)
			}
		})
	}
	// A mapping that rejects the record is a decode error too.
	strict, _ := serde.AvroTyped(viewSchema, serde.AvroMapping[pageView]{
		FromMap: func(map[string]any) (pageView, error) { return pageView{}, errors.New("no") },
	})
	var de *serde.DecodeError
	if _, err := strict.Decode(good); !errors.As(err, &de) {
		t.Errorf("FromMap error: got %v, want a *serde.DecodeError", err)
	}
}

func TestWireFormat(t *testing.T) {
	b := serde.AppendWire(nil, 0x01020304, []byte("body"))
	if want := []byte{0, 1, 2, 3, 4, 'b', 'o', 'd', 'y'}; !bytes.Equal(b, want) {
		t.Fatalf("AppendWire = % x, want % x", b, want)
	}
	id, body, err := serde.ParseWire(b)
	if err != nil || id != 0x01020304 || string(body) != "body" {
		t.Fatalf("ParseWire = %d, %q, %v", id, body, err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		msg  string
	}{
		{"empty", nil, "0 bytes, want at least 5"},
		{"short", []byte{0, 0, 0, 1}, "4 bytes, want at least 5"},
		{"magic", []byte{1, 0, 0, 0, 1, 2}, "magic byte 0x01, want 0x00"},
		{"json", []byte(`{"user":"u1"}`), "magic byte 0x7b"},
		{"negative id", []byte{0, 0x80, 0, 0, 0}, "negative schema id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := serde.ParseWire(tc.in)
			var de *serde.DecodeError
			if !errors.As(err, &de) || de.Serde != "avro" || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ParseWire(% x) = %v, want an avro *serde.DecodeError saying %q", tc.in, err, tc.msg)
			}
		})
	}
}

// newRegistry starts a test registry and a client of it.
func newRegistry(t *testing.T) (*registrytest.Server, *registry.Client) {
	t.Helper()
	srv := registrytest.NewServer()
	t.Cleanup(srv.Close)
	c, err := registry.New(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func TestAvroRegistryRoundTrip(t *testing.T) {
	srv, c := newRegistry(t)
	subject := serde.ValueSubject("views")
	typed, err := serde.AvroRegistryTyped(c, subject, viewSchema, viewMapping)
	if err != nil {
		t.Fatal(err)
	}
	v := pageView{User: "u1", Page: "/a", TS: 42, Referrer: ptr("r")}
	b, err := typed.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := serde.ParseWire(b)
	if err != nil || id != 1 {
		t.Fatalf("encoded id %d, %v; want the registered id 1", id, err)
	}
	if n := srv.Requests("POST /subjects/{subject}/versions"); n != 1 {
		t.Errorf("%d register calls, want 1", n)
	}
	// A second encode registers nothing.
	if _, err := typed.Encode(v); err != nil {
		t.Fatal(err)
	}
	if n := srv.Requests(""); n != 1 {
		t.Errorf("%d requests after two encodes, want 1", n)
	}

	// A decode-only serde with its own client fetches the schema once.
	c2, _ := registry.New(srv.URL())
	reader, err := serde.AvroRegistryTyped(c2, "", "", viewMapping)
	if err != nil {
		t.Fatal(err)
	}
	before := srv.Requests("GET /schemas/ids/{id}")
	for i := range 3 {
		got, err := reader.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Fatalf("decode %d = %+v, want %+v", i, got, v)
		}
		if n := srv.Requests("GET /schemas/ids/{id}") - before; n != 1 {
			t.Fatalf("after decode %d: %d schema fetches, want 1 (cached by id)", i, n)
		}
	}
	if _, err := reader.Encode(v); err == nil {
		t.Error("Encode on a decode-only serde succeeded")
	}

	// Generic values through the registry.
	gen, err := serde.AvroRegistry(c2, subject, viewSchema)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, gen, map[string]any{"user": "u", "page": "p", "ts": int64(7), "referrer": nil}, nil)
}

// TestAvroRegistryEvolution: records written with two schema versions of
// one subject both decode (each with its writer's schema).
func TestAvroRegistryEvolution(t *testing.T) {
	_, c := newRegistry(t)
	subject := serde.ValueSubject("views")
	v1, _ := serde.AvroRegistry(c, subject, viewSchema)
	v2, _ := serde.AvroRegistry(c, subject, viewSchemaV2)
	b1, err := v1.Encode(map[string]any{"user": "a", "page": "p", "ts": int64(1), "referrer": nil})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := v2.Encode(map[string]any{"user": "b", "page": "p", "ts": int64(2), "referrer": nil, "ms": int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	id1, _, _ := serde.ParseWire(b1)
	id2, _, _ := serde.ParseWire(b2)
	if id1 == id2 {
		t.Fatalf("both versions got id %d", id1)
	}
	reader, _ := serde.AvroRegistryTyped(c, "", "", viewMapping)
	for _, b := range [][]byte{b1, b2} {
		if _, err := reader.Decode(b); err != nil {
			t.Errorf("Decode: %v", err)
		}
	}
	latest, err := c.SubjectVersion(context.Background(), subject, registry.Latest)
	if err != nil || latest.Version != 2 || latest.ID != id2 {
		t.Errorf("latest = %+v, %v; want version 2, id %d", latest, err, id2)
	}
}

func TestAvroRegistryBadRecords(t *testing.T) {
	srv, c := newRegistry(t)
	w, _ := serde.AvroRegistryTyped(c, "s", viewSchema, viewMapping)
	good, err := w.Encode(pageView{User: "u", Page: "p", TS: 1})
	if err != nil {
		t.Fatal(err)
	}
	unknownID := serde.AppendWire(nil, 99, good[serde.WireHeaderLen:])
	for _, tc := range []struct {
		name string
		in   []byte
		msg  string
	}{
		{"not wire format", good[serde.WireHeaderLen:], "wire format"},
		{"unknown schema id", unknownID, "schema id 99"},
		{"bad body", append(serde.AppendWire(nil, 1, nil), 0xff, 0xff), "body"},
		{"trailing bytes", append(append([]byte(nil), good...), 1), "trailing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.Decode(tc.in)
			var de *serde.DecodeError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Decode = %v (%T), want a *serde.DecodeError saying %q", err, err, tc.msg)
			}
		})
	}
	var de *serde.DecodeError
	_, err = w.Decode(unknownID)
	if !errors.As(err, &de) || !errors.Is(err, serde.ErrSchemaNotFound) {
		t.Errorf("unknown id: %v, want it to match ErrSchemaNotFound", err)
	}
	// Unknown ids are remembered: no new registry call.
	n := srv.Requests("")
	w.Decode(unknownID) //nolint:errcheck // checked above
	if m := srv.Requests(""); m != n {
		t.Errorf("a known-unknown id made %d more requests", m-n)
	}
}

// TestAvroRegistryUnavailable: a registry that cannot be reached is not
// the record's fault: the error is not a *DecodeError.
func TestAvroRegistryUnavailable(t *testing.T) {
	srv := registrytest.NewServer()
	c, _ := registry.New(srv.URL())
	srv.Close()
	s, _ := serde.AvroRegistry(c, "", "", serde.RegistryTimeout(200e6))
	_, err := s.Decode(serde.AppendWire(nil, 1, []byte{0}))
	var de *serde.DecodeError
	if err == nil || errors.As(err, &de) {
		t.Fatalf("Decode with the registry down = %v, want a non-DecodeError", err)
	}
}

func TestAvroRegistryConcurrent(t *testing.T) {
	srv, c := newRegistry(t)
	w, _ := serde.AvroRegistryTyped(c, "s", viewSchema, viewMapping)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				v := pageView{User: fmt.Sprint(g), Page: "p", TS: int64(i)}
				b, err := w.Encode(v)
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := w.Decode(b); err != nil || got != v {
					t.Errorf("round trip: %+v, %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := srv.Requests("GET /schemas/ids/{id}"); n != 0 {
		t.Errorf("%d schema fetches, want 0: the writer's own id is known", n)
	}
}

// FuzzAvroWireDecode feeds arbitrary bytes to the wire-format decoder
// (header, registry look-up, body). It must never panic and must fail only
// with a *DecodeError; what decodes must re-encode and decode to the same
// value (not the same bytes: Avro varints have overlong forms).
func FuzzAvroWireDecode(f *testing.F) {
	srv := registrytest.NewServer()
	defer srv.Close()
	if _, err := srv.Register("s", viewSchema); err != nil {
		f.Fatal(err)
	}
	c, _ := registry.New(srv.URL())
	s, err := serde.AvroRegistry(c, "s", viewSchema)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := s.Encode(map[string]any{"user": "u", "page": "/p", "ts": int64(99), "referrer": map[string]any{"string": "r"}})
	for _, b := range [][]byte{nil, {0}, {0, 0, 0, 0, 1}, good, good[:7], {1, 0, 0, 0, 1, 0}, {0, 0, 0, 0, 2, 0}, {0, 0xff, 0xff, 0xff, 0xff}} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.Decode(b)
		if err != nil {
			var de *serde.DecodeError
			if !errors.As(err, &de) || de.Serde != "avro" {
				t.Fatalf("Decode(% x) = %v (%T), want an avro *serde.DecodeError", b, err, err)
			}
			return
		}
		enc, err := s.Encode(v)
		if err != nil {
			t.Fatalf("Encode(Decode(% x)) = %v", b, err)
		}
		v2, err := s.Decode(enc)
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("Decode(% x) = %v re-encodes to % x = %v, %v", b, v, enc, v2, err)
		}
	})
}

// FuzzParseWire: the header parser never panics, fails only with a
// *DecodeError, and round-trips through AppendWire.
func FuzzParseWire(f *testing.F) {
	for _, b := range [][]byte{nil, {0, 0, 0, 0, 1}, {0, 0, 0, 0, 1, 'x'}, {1, 2, 3, 4, 5}} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, body, err := serde.ParseWire(b)
		if err != nil {
			var de *serde.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("ParseWire(% x) = %v (%T)", b, err, err)
			}
			return
		}
		if got := serde.AppendWire(nil, id, body); !bytes.Equal(got, b) {
			t.Fatalf("AppendWire(ParseWire(% x)) = % x", b, got)
		}
	})
}
