package state

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"testing"
)

var checkpointCases = []Checkpoint{
	{},
	{ID: 1},
	{
		ID:         math.MaxUint64,
		Inputs:     []Offset{{"in", 0, 0}, {"in", 1, math.MaxInt64}, {"", math.MinInt32, -1}},
		Changelogs: map[string]int64{"b": 5, "a": math.MinInt64, "": 0},
		Watermarks: []Watermark{{"in", math.MaxInt32, "", math.MinInt64}, {"in", 1, "", 1_700_000_000_000}, {"rep", 3, "0_7", 42}},
	},
}

func TestCheckpointRoundTrip(t *testing.T) {
	for _, c := range checkpointCases {
		b := c.Encode()
		got, err := DecodeCheckpoint(b)
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", c, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip:\n got  %+v\n want %+v", got, c)
		}
		if !bytes.Equal(got.Encode(), b) {
			t.Fatalf("re-encode differs")
		}
	}
}

func TestCheckpointGolden(t *testing.T) {
	c := Checkpoint{
		ID:         3,
		Inputs:     []Offset{{"in", 2, 10}},
		Changelogs: map[string]int64{"s": 4},
		Watermarks: []Watermark{{"in", 2, "", -1}, {"in", 2, "0_1", 5}},
	}
	// 02 | 03 | 01 02 "in" 04 14 | 01 01 "s" 08 | 02 02 "in" 04 00 01 02 "in" 04 03 "0_1" 0a
	const want = "0203" + "0102696e0414" + "01017308" + "02" + "02696e040001" + "02696e0403305f310a"
	if got := hex.EncodeToString(c.Encode()); got != want {
		t.Fatalf("Encode = %s, want %s", got, want)
	}
}

// A version 1 record (no upstream tasks in Watermarks), as written before
// version 2, still decodes.
func TestDecodeCheckpointVersion1(t *testing.T) {
	b, err := hex.DecodeString("0103" + "0102696e0414" + "01017308" + "0102696e0401")
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCheckpoint(b)
	if err != nil {
		t.Fatalf("DecodeCheckpoint(v1): %v", err)
	}
	want := Checkpoint{ID: 3, Inputs: []Offset{{"in", 2, 10}}, Changelogs: map[string]int64{"s": 4}, Watermarks: []Watermark{{"in", 2, "", -1}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeCheckpoint(v1) = %+v, want %+v", got, want)
	}
}

func TestDecodeCheckpointRejects(t *testing.T) {
	valid := checkpointCases[2].Encode()
	cases := map[string][]byte{
		"empty":         nil,
		"version":       {3},
		"truncated":     valid[:len(valid)-1],
		"trailing":      append(bytes.Clone(valid), 0),
		"huge count":    {1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"dup store":     {1, 0, 0, 2, 1, 'a', 0, 1, 'a', 0, 0},
		"partition":     {1, 0, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0},
		"string length": {1, 0, 1, 9, 'a'},
	}
	for name, b := range cases {
		if _, err := DecodeCheckpoint(b); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("%s: DecodeCheckpoint(%x) = %v, want ErrBadCheckpoint", name, b, err)
		}
	}
}

func FuzzDecodeCheckpoint(f *testing.F) {
	for _, c := range checkpointCases {
		f.Add(c.Encode())
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCheckpoint(b)
		if err != nil {
			if !errors.Is(err, ErrBadCheckpoint) {
				t.Fatalf("error does not wrap ErrBadCheckpoint: %v", err)
			}
			return
		}
		// Whatever decodes re-encodes to bytes that decode to the same
		// checkpoint, and encoding is then a fixed point.
		enc := c.Encode()
		c2, err := DecodeCheckpoint(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("re-decode differs:\n %+v\n %+v", c, c2)
		}
		if !bytes.Equal(c2.Encode(), enc) {
			t.Fatal("encoding is not a fixed point")
		}
	})
}
