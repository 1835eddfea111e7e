package windows

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"testing"
)

func TestControlCodec(t *testing.T) {
	tests := []struct {
		name string
		c    ControlRecord
		hex  string
	}{
		{"basic", ControlRecord{UpstreamTask: "1_3", UpstreamTasks: 4, Watermark: 1_700_000_000_000},
			"0100" + "00000004" + "0000018bcfe56800" + "0003" + "315f33"},
		{"idle unknown", ControlRecord{UpstreamTask: "t", UpstreamTasks: 1, Watermark: math.MinInt64, Idle: true},
			"0101" + "00000001" + "8000000000000000" + "0001" + "74"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := EncodeControl(tt.c)
			if got := hex.EncodeToString(b); got != tt.hex {
				t.Fatalf("encoded %s, want %s", got, tt.hex)
			}
			got, err := DecodeControl(b)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.c
			want.Version = ControlVersion
			if got != want {
				t.Fatalf("decoded %+v, want %+v", got, want)
			}
		})
	}
}

func TestDecodeControlErrors(t *testing.T) {
	valid := EncodeControl(ControlRecord{UpstreamTask: "ab", UpstreamTasks: 2, Watermark: 5})
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	tests := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"valid", valid, true},
		{"empty", nil, false},
		{"truncated fixed part", valid[:10], false},
		{"truncated id", valid[:len(valid)-1], false},
		{"trailing v1", append(bytes.Clone(valid), 0), false},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0; return b }), false},
		{"unknown flag v1", mod(func(b []byte) []byte { b[1] = 2; return b }), false},
		{"zero tasks", mod(func(b []byte) []byte { b[5] = 0; return b }), false},
		{"empty id", mod(func(b []byte) []byte { b[15] = 0; return b[:16] }), false},
		{"v2 with extension", mod(func(b []byte) []byte { b[0] = 2; b[1] |= 0x80; return append(b, 9, 9) }), true},
		{"v2 truncated id", mod(func(b []byte) []byte { b[0] = 2; b[15] = 200; return b }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeControl(tt.b)
			if tt.ok {
				if err != nil || c.UpstreamTask != "ab" || c.UpstreamTasks != 2 || c.Watermark != 5 {
					t.Fatalf("got %+v, %v", c, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidControl) || !IsInvalidControl(err) {
				t.Fatalf("err = %v, want ErrInvalidControl", err)
			}
		})
	}
	long := ControlRecord{UpstreamTask: string(make([]byte, MaxTaskIDLen+1)), UpstreamTasks: 1}
	if _, err := DecodeControl(EncodeControl(long)); !IsInvalidControl(err) {
		t.Fatalf("over-long id: %v", err)
	}
}

// FuzzDecodeControl: DecodeControl never panics, accepts only what
// Validate accepts, and what it accepts re-encodes to a record that
// decodes the same (and, for version 1, to the same bytes).
func FuzzDecodeControl(f *testing.F) {
	f.Add(EncodeControl(ControlRecord{UpstreamTask: "0_0", UpstreamTasks: 1, Watermark: 0}))
	f.Add(EncodeControl(ControlRecord{UpstreamTask: "12_345", UpstreamTasks: 64, Watermark: math.MinInt64, Idle: true}))
	f.Add(EncodeControl(ControlRecord{UpstreamTask: "x", UpstreamTasks: math.MaxUint32, Watermark: math.MaxInt64}))
	f.Add(append(EncodeControl(ControlRecord{UpstreamTask: "v2", UpstreamTasks: 3, Watermark: 7}), 1, 2, 3))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeControl(b)
		if err != nil {
			if !IsInvalidControl(err) {
				t.Fatalf("error does not wrap ErrInvalidControl: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("decoded invalid record %+v: %v", c, err)
		}
		re := EncodeControl(c)
		if c.Version == 1 && !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", re, b)
		}
		c2, err := DecodeControl(re)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		c.Version = ControlVersion
		if c2 != c {
			t.Fatalf("round trip %+v != %+v", c2, c)
		}
	})
}

// FuzzDecodeEntry: window entries come back from changelogs; decoding
// garbage must fail cleanly, never panic.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(appendEntryKey(nil, []byte("k"), 5), appendEntry(nil, flagComplete, 10, 3, []byte("acc")))
	f.Add([]byte{prefixEntry, 0xff, 0xff, 0xff, 0xff}, []byte{1, 0})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		if key, start, err := decodeEntryKey(k); err == nil {
			if !bytes.Equal(appendEntryKey(nil, key, start), k) {
				t.Fatalf("key round trip")
			}
		} else if !errors.Is(err, ErrCorruptState) {
			t.Fatal(err)
		}
		if e, err := decodeEntry(v); err == nil {
			if re := appendEntry(nil, e.flags, e.end, e.count, e.acc); len(re) > len(v) {
				t.Fatalf("entry re-encodes longer")
			}
		} else if !errors.Is(err, ErrCorruptState) {
			t.Fatal(err)
		}
	})
}
