package serde_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/weirstream/weir/serde"
)

// roundTrip encodes v, checks the bytes when want is non-nil, decodes them
// and checks the value comes back.
func roundTrip[T any](t *testing.T, s serde.Serde[T], v T, want []byte) {
	t.Helper()
	b, err := s.Encode(v)
	if err != nil {
		t.Fatalf("Encode(%#v): %v", v, err)
	}
	if want != nil && !bytes.Equal(b, want) {
		t.Errorf("Encode(%#v) = %q, want %q", v, b, want)
	}
	got, err := s.Decode(b)
	if err != nil {
		t.Fatalf("Decode(%q): %v", b, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Errorf("Decode(Encode(%#v)) = %#v", v, got)
	}
}

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    []byte
	}{
		{"nil", nil},
		{"zero byte", []byte{0}},
		{"text", []byte("hello")},
		{"binary", []byte{0xff, 0x00, 0x80, 0x7f}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roundTrip(t, serde.Bytes(), tc.v, tc.v)
		})
	}

	// Decode copies: the input buffer may be reused by the caller.
	in := []byte("abc")
	got, err := serde.Bytes().Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	in[0] = 'X'
	if string(got) != "abc" {
		t.Errorf("Decode result changed with its input: %q", got)
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    string
		want []byte
	}{
		{"empty", "", []byte{}},
		{"ascii", "hello", []byte("hello")},
		{"utf-8", "grüße, 世界", []byte("grüße, 世界")},
		{"nul", "a\x00b", []byte{'a', 0, 'b'}},
		{"invalid utf-8 kept as is", "\xff\xfe", []byte{0xff, 0xfe}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roundTrip(t, serde.String(), tc.v, tc.want)
		})
	}
	// A null key or value decodes as "".
	if got, err := serde.String().Decode(nil); err != nil || got != "" {
		t.Errorf("Decode(nil) = %q, %v; want \"\", nil", got, err)
	}
}

func TestInt64(t *testing.T) {
	for _, tc := range []struct {
		v    int64
		want []byte // Kafka LongSerializer: 8 bytes big-endian
	}{
		{0, []byte{0, 0, 0, 0, 0, 0, 0, 0}},
		{1, []byte{0, 0, 0, 0, 0, 0, 0, 1}},
		{256, []byte{0, 0, 0, 0, 0, 0, 1, 0}},
		{-1, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{math.MaxInt64, []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{math.MinInt64, []byte{0x80, 0, 0, 0, 0, 0, 0, 0}},
		{0x0102030405060708, []byte{1, 2, 3, 4, 5, 6, 7, 8}},
	} {
		roundTrip(t, serde.Int64(), tc.v, tc.want)
	}
}

func TestInt64WrongLength(t *testing.T) {
	for _, b := range [][]byte{nil, {}, {1}, make([]byte, 7), make([]byte, 9), make([]byte, 16)} {
		v, err := serde.Int64().Decode(b)
		var de *serde.DecodeError
		if !errors.As(err, &de) {
			t.Errorf("Decode(% x) = %d, %v; want a *serde.DecodeError", b, v, err)
			continue
		}
		if de.Serde != "int64" {
			t.Errorf("DecodeError.Serde = %q, want %q", de.Serde, "int64")
		}
		if v != 0 {
			t.Errorf("Decode(% x) returned %d with its error, want 0", b, v)
		}
		want := "serde: int64 decode: want 8 bytes, got " + strconv.Itoa(len(b))
		if err.Error() != want {
			t.Errorf("error = %q, want %q", err, want)
		}
	}
}

type order struct {
	ID    string            `json:"id"`
	Qty   int               `json:"qty"`
	Price float64           `json:"price"`
	Tags  []string          `json:"tags,omitempty"`
	Attrs map[string]string `json:"attrs,omitempty"`
	Next  *order            `json:"next,omitempty"`
}

func TestJSON(t *testing.T) {
	t.Run("struct", func(t *testing.T) {
		for _, v := range []order{
			{},
			{ID: "o-1", Qty: 3, Price: 9.5},
			{ID: "ü\"\n<>&", Qty: -1, Price: 1e-7, Tags: []string{"a", ""}, Attrs: map[string]string{"k": "v"}},
			{ID: "outer", Next: &order{ID: "inner", Qty: 1}},
		} {
			roundTrip(t, serde.JSON[order](), v, nil)
		}
		roundTrip(t, serde.JSON[order](), order{ID: "x", Qty: 2}, []byte(`{"id":"x","qty":2,"price":0}`))
	})
	t.Run("scalars", func(t *testing.T) {
		roundTrip(t, serde.JSON[string](), "hi", []byte(`"hi"`))
		roundTrip(t, serde.JSON[int64](), math.MaxInt64, []byte(`9223372036854775807`))
		roundTrip(t, serde.JSON[bool](), true, []byte(`true`))
		roundTrip(t, serde.JSON[[]int](), []int{1, 2, 3}, []byte(`[1,2,3]`))
		roundTrip(t, serde.JSON[map[string]int](), map[string]int{"b": 2, "a": 1}, []byte(`{"a":1,"b":2}`))
		roundTrip(t, serde.JSON[*order](), nil, []byte(`null`))
		roundTrip(t, serde.JSON[any](), any(map[string]any{"n": 1.5, "l": []any{"x", nil}}), nil)
	})
}

func TestJSONEncodeError(t *testing.T) {
	_, err := serde.JSON[float64]().Encode(math.NaN())
	if err == nil {
		t.Fatal("Encode(NaN) succeeded")
	}
	if !strings.HasPrefix(err.Error(), "serde: json encode: ") {
		t.Errorf("error %q lacks the serde prefix", err)
	}
	var de *serde.DecodeError
	if errors.As(err, &de) {
		t.Errorf("an encode failure is a *DecodeError: %v", err)
	}
}

func TestJSONGarbage(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"whitespace", []byte("  \n")},
		{"truncated object", []byte(`{"id":`)},
		{"trailing data", []byte(`{"id":"a"} {}`)},
		{"trailing garbage", []byte(`{"id":"a"}x`)},
		{"bare word", []byte(`nul`)},
		{"wrong type", []byte(`{"qty":"three"}`)},
		{"array for object", []byte(`[1]`)},
		{"binary", []byte{0xff, 0x00, 0x01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := serde.JSON[order]().Decode(tc.in)
			var de *serde.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode(%q) = %v (%T), want a *serde.DecodeError", tc.in, err, err)
			}
			if de.Serde != "json" {
				t.Errorf("DecodeError.Serde = %q, want %q", de.Serde, "json")
			}
			if de.Err == nil || errors.Unwrap(err) != de.Err {
				t.Errorf("DecodeError does not unwrap to its cause: %#v", de)
			}
			if !strings.HasPrefix(err.Error(), "serde: json decode: ") {
				t.Errorf("error %q lacks the prefix %q", err, "serde: json decode: ")
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	// Serdes are shared by tasks on several goroutines (-race checks).
	s := serde.JSON[order]()
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 100 {
				b, _ := s.Encode(order{Qty: i})
				if v, err := s.Decode(b); err != nil || v.Qty != i {
					t.Errorf("round trip %d: %v, %v", i, v, err)
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}

// FuzzJSONDecode feeds arbitrary bytes to the JSON decoder. It must never
// panic, must fail only with a *DecodeError, and whatever decodes must
// encode and decode back to the same value with stable bytes.
func FuzzJSONDecode(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `"x"`, `1e308`, `-0`, `{"id":"a","qty":1,"price":2.5}`,
		`{"next":{"next":{"id":"deep"}}}`, `{"attrs":{"k":"v"},"tags":["a"]}`,
		`"\ud800"`, "\"\xff\"", `{"id":"a"}x`, `[1,{"a":[null,true]}]`,
		`{"user":"u","ts":1}`, `{"User":null,"ts":1}`, `{"user":"u","TS":2,"user":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzJSON(t, serde.JSON[order](), b)
		fuzzJSON(t, serde.JSON[any](), b)
		fuzzJSON(t, serde.JSON[visit](), b)
	})
}

func fuzzJSON[T any](t *testing.T, s serde.Serde[T], b []byte) {
	v, err := s.Decode(b)
	if err != nil {
		var de *serde.DecodeError
		if !errors.As(err, &de) || de.Serde != "json" {
			t.Fatalf("Decode(%q) = %v (%T), want a json *serde.DecodeError", b, err, err)
		}
		return
	}
	enc, err := s.Encode(v)
	if err != nil {
		t.Fatalf("Encode(Decode(%q)) = %v", b, err)
	}
	v2, err := s.Decode(enc)
	if err != nil {
		t.Fatalf("Decode(%q) of re-encoded %q: %v", enc, b, err)
	}
	if !reflect.DeepEqual(v, v2) {
		t.Fatalf("round trip of %q changed the value: %#v -> %q -> %#v", b, v, enc, v2)
	}
	enc2, err := s.Encode(v2)
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("encoding is not stable: %q then %q (%v)", enc, enc2, err)
	}
}

// FuzzInt64Decode: every 8-byte input decodes and encodes back to itself;
// every other length is a *DecodeError. Never a panic.
func FuzzInt64Decode(f *testing.F) {
	for _, b := range [][]byte{nil, {1}, make([]byte, 8), {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, make([]byte, 9)} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := serde.Int64()
		v, err := s.Decode(b)
		if len(b) != 8 {
			var de *serde.DecodeError
			if !errors.As(err, &de) || de.Serde != "int64" {
				t.Fatalf("Decode(% x) = %d, %v; want an int64 *serde.DecodeError", b, v, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Decode(% x): %v", b, err)
		}
		enc, err := s.Encode(v)
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("Encode(Decode(% x)) = % x, %v", b, enc, err)
		}
	})
}

// FuzzStringDecode: strings keep every byte, valid UTF-8 or not.
func FuzzStringDecode(f *testing.F) {
	f.Add([]byte("hello"))
	f.Add([]byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := serde.String().Decode(b)
		if err != nil {
			t.Fatalf("Decode(%q): %v", b, err)
		}
		enc, err := serde.String().Encode(v)
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("Encode(Decode(%q)) = %q, %v", b, enc, err)
		}
	})
}

// FuzzBytesDecode: Bytes keeps every byte and never aliases its input.
func FuzzBytesDecode(f *testing.F) {
	f.Add([]byte("hello"))
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := serde.Bytes().Decode(b)
		if err != nil {
			t.Fatalf("Decode(%q): %v", b, err)
		}
		if !bytes.Equal(v, b) {
			t.Fatalf("Decode(%q) = %q", b, v)
		}
		if len(b) > 0 && &v[0] == &b[0] {
			t.Fatalf("Decode(%q) returned its input slice", b)
		}
	})
}

func TestExcerpt(t *testing.T) {
	if got := serde.Excerpt([]byte(`{"a":1}`)); got != `{"a":1}` {
		t.Errorf("Excerpt(short) = %q", got)
	}
	long := []byte(strings.Repeat("é", 1000)) // 2000 bytes, 2 per rune
	got := serde.Excerpt(long)
	if want := strings.Repeat("é", serde.ExcerptBytes/2) + "… (2000 bytes)"; got != want {
		t.Errorf("Excerpt(2000 bytes) = %q, want %q", got, want)
	}
	odd := append([]byte("x"), long...) // the 64th byte starts no rune
	if got := serde.Excerpt(odd); got != "x"+strings.Repeat("é", serde.ExcerptBytes/2-1)+"… (2001 bytes)" {
		t.Errorf("Excerpt(2001 bytes) = %q: cut inside a rune?", got)
	}
}

// TestDecodeErrorBounded: encoding/json quotes a number it cannot store
// whole; a DecodeError's text stays short however long the cause.
func TestDecodeErrorBounded(t *testing.T) {
	type ev struct {
		TS int64 `json:"ts"`
	}
	_, err := serde.JSON[ev]().Decode([]byte(`{"ts":` + strings.Repeat("9", 900_000) + `}`))
	if err == nil {
		t.Fatal("a 900,000-digit ts decodes")
	}
	if text := err.Error(); len(text) > 1100 || !strings.HasPrefix(text, "serde: json decode: json: cannot unmarshal number 999") || !strings.Contains(text, "… (900007 bytes)") {
		t.Fatalf("decode error of %d bytes: %.200q…", len(text), text)
	}
}

func TestTruncateTextUTF8(t *testing.T) {
	s := strings.Repeat("é", 100) // 2 bytes each
	got := serde.TruncateText(s, 64)
	if len(got) > 64 || !strings.HasSuffix(got, "… (200 bytes, truncated)") || !strings.HasPrefix(got, "éé") {
		t.Fatalf("TruncateText = %q (%d bytes)", got, len(got))
	}
	for i, r := range got {
		if r == '\uFFFD' {
			t.Fatalf("TruncateText cut a rune at byte %d: %q", i, got)
		}
	}
	if got := serde.TruncateText("short", 64); got != "short" {
		t.Fatalf("TruncateText(short) = %q", got)
	}
}

// visit has required fields: a decode must refuse a value without them
// (missing or null) instead of handing out zero values.
type visit struct {
	User  string  `json:"user" weir:"required"`
	TS    int64   `json:"ts" weir:"required"`
	Page  string  `json:"page"`
	Ref   *string `json:"ref"`
	Count int     // untagged: matched by name, optional
}

func TestJSONRequired(t *testing.T) {
	s := serde.JSON[visit]()
	got, err := s.Decode([]byte(`{"user":"u1","ts":5}`))
	if err != nil || got != (visit{User: "u1", TS: 5}) {
		t.Fatalf("Decode of a complete value = %+v, %v", got, err)
	}
	// Optional fields may be null or missing; encoding/json's case-
	// insensitive field matching applies to required fields too.
	got, err = s.Decode([]byte(`{"USER":"u2","ts":0,"page":null,"ref":null}`))
	if err != nil || got != (visit{User: "u2"}) {
		t.Fatalf("Decode with null optional fields = %+v, %v", got, err)
	}
	for _, tc := range []struct {
		in, want string
	}{
		{`{"ts":5}`, `serde: json decode: required field "user" is missing`},
		{`{"user":null,"ts":5}`, `serde: json decode: required field "user" is null`},
		{`{"user":"u1"}`, `serde: json decode: required field "ts" is missing`},
		{`{"user":"u1","ts":null}`, `serde: json decode: required field "ts" is null`},
		{`{}`, `serde: json decode: required field "user" is missing`},
		{`null`, `serde: json decode: null, want an object with the required field "user"`},
		{`{"user":true,"ts":5}`, `serde: json decode: json: cannot unmarshal bool into Go struct field visit.user of type string`},
		{`{"user":"u1","ts":"5"}`, `serde: json decode: json: cannot unmarshal string into Go struct field visit.ts of type int64`},
	} {
		v, err := s.Decode([]byte(tc.in))
		var de *serde.DecodeError
		if !errors.As(err, &de) || de.Serde != "json" {
			t.Errorf("Decode(%s) = %+v, %v; want a json *serde.DecodeError", tc.in, v, err)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("Decode(%s): %q, want %q", tc.in, err, tc.want)
		}
	}
	// A pointer type has the same contract; a null pointer is a null value.
	if v, err := serde.JSON[*visit]().Decode([]byte(`{"ts":1}`)); err == nil {
		t.Errorf("JSON[*visit] Decode without user = %+v, want an error", v)
	}
	if v, err := serde.JSON[*visit]().Decode([]byte(`{"user":"u","ts":1}`)); err != nil || v.User != "u" {
		t.Errorf("JSON[*visit] Decode = %+v, %v", v, err)
	}
}

// TestJSONBadRequiredTag: a misspelt tag is a programming error, reported
// by every Decode and Encode instead of being ignored.
func TestJSONBadRequiredTag(t *testing.T) {
	type bad struct {
		A string `weir:"requried"`
		B string `json:"-" weir:"required"`
	}
	s := serde.JSON[bad]()
	want := `serde: json: type serde_test.bad: field A: unknown weir tag "requried" (want "required"); field B: required but not in JSON (json:"-")`
	if _, err := s.Decode([]byte(`{"A":"x"}`)); err == nil || err.Error() != want {
		t.Errorf("Decode: %v, want %q", err, want)
	}
	if _, err := s.Encode(bad{}); err == nil || err.Error() != want {
		t.Errorf("Encode: %v, want %q", err, want)
	}
}

// TestJSONInvalidUTF8: encoding/json replaces invalid UTF-8 with U+FFFD,
// so distinct byte strings would decode to one value. JSON text is UTF-8
// (RFC 8259); the serde refuses anything else.
func TestJSONInvalidUTF8(t *testing.T) {
	for _, in := range []string{
		"\"\xff\"",
		"{\"id\":\"a\xfeb\"}",
		"{\"id\":\"ok\",\"attrs\":{\"\xc3\":\"v\"}}",
		"{\"id\":\"\xed\xa0\x80\"}", // an encoded surrogate
	} {
		for name, err := range map[string]error{
			"order": func() error { _, err := serde.JSON[order]().Decode([]byte(in)); return err }(),
			"any":   func() error { _, err := serde.JSON[any]().Decode([]byte(in)); return err }(),
		} {
			var de *serde.DecodeError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Errorf("JSON[%s].Decode(%q) = %v, want a *DecodeError saying it is not valid UTF-8", name, in, err)
			}
		}
	}
	// Escaped code points are valid JSON text, also U+FFFD itself.
	if v, err := serde.JSON[string]().Decode([]byte(`"\u00fc\ufffd"`)); err != nil || v != "ü\ufffd" {
		t.Errorf("Decode of escapes = %q, %v", v, err)
	}
}

// TestJSONErrorsQuoteLittle: a dead letter's error header must not repeat
// a huge value; encoding/json quotes a mistyped number whole.
func TestJSONErrorsQuoteLittle(t *testing.T) {
	digits := strings.Repeat("9", 100_000)
	for _, in := range []string{
		`{"qty":` + digits + `}`,
		`{"qty":1.` + digits + `}`,
		`{"id":` + digits + `}`,
		`{"id":"` + digits + `"`,
	} {
		_, err := serde.JSON[order]().Decode([]byte(in))
		if err == nil {
			t.Fatalf("Decode(%.40q...) succeeded", in)
		}
		if len(err.Error()) > 200 {
			t.Errorf("Decode(%.40q...): error of %d bytes: %.200q...", in, len(err.Error()), err)
		}
	}
}
