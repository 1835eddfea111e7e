package serde_test

import (
	"testing"

	"github.com/weirstream/weir/serde"
)

// benchClick is a typical small event (the demo's click).
type benchClick struct {
	User string `json:"user"`
	Page string `json:"page"`
	TS   int64  `json:"ts"`
}

var benchClickJSON = []byte(`{"user":"user-1234","page":"/products/42?ref=home","ts":1700000000123}`)

func benchDecode[T any](b *testing.B, s serde.Serde[T], in []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := s.Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONDecode(b *testing.B) {
	benchDecode(b, serde.JSON[benchClick](), benchClickJSON)
}

// requiredClick is benchClick with required fields (a second, partial
// decode checks them).
type requiredClick struct {
	User string `json:"user" weir:"required"`
	Page string `json:"page"`
	TS   int64  `json:"ts" weir:"required"`
}

func BenchmarkJSONDecodeRequired(b *testing.B) {
	benchDecode(b, serde.JSON[requiredClick](), benchClickJSON)
}
