package changelog

import (
	"bytes"
	"errors"
	"testing"
)

func TestTopic(t *testing.T) {
	if got := Topic("shop", "counts"); got != "shop-counts-changelog" {
		t.Fatalf("Topic = %q", got)
	}
}

func TestTopicConfigs(t *testing.T) {
	c := TopicConfigs()
	if v := c["cleanup.policy"]; v == nil || *v != "compact" {
		t.Fatalf("cleanup.policy = %v", v)
	}
	*c["cleanup.policy"] = "delete"
	if *TopicConfigs()["cleanup.policy"] != "compact" {
		t.Fatal("TopicConfigs shares its map between calls")
	}
}

func TestEncodeDecode(t *testing.T) {
	for _, v := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte{0xff}, 300)} {
		enc := EncodeValue(v)
		if enc == nil {
			t.Fatal("EncodeValue returned nil (a tombstone)")
		}
		if want := append([]byte{0x57, 0x01}, v...); !bytes.Equal(enc, want) {
			t.Fatalf("EncodeValue(%q) = %x, want %x", v, enc, want)
		}
		got, del, err := DecodeValue(enc)
		if err != nil || del || !bytes.Equal(got, v) {
			t.Fatalf("DecodeValue(EncodeValue(%q)) = %q %v %v", v, got, del, err)
		}
	}
	if v, del, err := DecodeValue(nil); v != nil || !del || err != nil {
		t.Fatalf("DecodeValue(nil) = %q %v %v, want tombstone", v, del, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := []struct {
		in   []byte
		want error
	}{
		{[]byte{}, ErrShortFrame},
		{[]byte{0x57}, ErrShortFrame},
		{[]byte{0x00, 0x01, 'x'}, ErrBadMagic},
		{[]byte("{\"json\":1}"), ErrBadMagic},
		{[]byte{0x57, 0x02, 'x'}, ErrUnknownVersion},
		{[]byte{0x57, 0x00}, ErrUnknownVersion},
	}
	for _, tc := range cases {
		if _, _, err := DecodeValue(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("DecodeValue(%x) = %v, want %v", tc.in, err, tc.want)
		}
	}
}

// FuzzDecodeValue runs its seed corpus (testdata/fuzz/FuzzDecodeValue and
// the f.Add seeds) in every go test.
func FuzzDecodeValue(f *testing.F) {
	f.Add([]byte{0x57, 0x01})
	f.Add([]byte{0x57, 0x01, 0x00, 'a'})
	f.Add([]byte{0x57})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, del, err := DecodeValue(b)
		if del {
			t.Fatalf("a non-nil input decoded as a tombstone: %x", b)
		}
		if err != nil {
			if !errors.Is(err, ErrShortFrame) && !errors.Is(err, ErrBadMagic) && !errors.Is(err, ErrUnknownVersion) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if !bytes.Equal(EncodeValue(v), b) {
			t.Fatalf("EncodeValue(DecodeValue(%x)) = %x", b, EncodeValue(v))
		}
	})
}
