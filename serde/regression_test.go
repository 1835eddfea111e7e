package serde_test

import (
	"testing"

	"github.com/weirstream/weir/serde"
)

func TestBytesDecodeKeepsEmptyNonNil(t *testing.T) {
	got, err := serde.Bytes().Decode([]byte{})
	if err != nil || got == nil {
		t.Errorf("Decode([]byte{}) = %#v, %v; want []byte{} (empty, not null)", got, err)
	}
}
