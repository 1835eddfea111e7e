package topology_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
)

func TestDeadLetter(t *testing.T) {
	src := &kgo.Record{Topic: "in", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("{bad"),
		Timestamp: time.UnixMilli(1700000000123), Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t1")}}}
	r := topology.DeadLetter("app", src, errors.New("boom"))
	if r.Topic != "app-dlq" || r.Partition != 0 || string(r.Key) != "k" || string(r.Value) != "{bad" || !r.Timestamp.Equal(src.Timestamp) {
		t.Fatalf("dlq record = %+v", r)
	}
	wantHeaders(t, r.Headers, []kgo.RecordHeader{
		{Key: "trace", Value: []byte("t1")},
		{Key: topology.HeaderError, Value: []byte("boom")},
		{Key: topology.HeaderSourceTopic, Value: []byte("in")},
		{Key: topology.HeaderSourcePartition, Value: []byte("3")},
		{Key: topology.HeaderSourceOffset, Value: []byte("42")},
	})
	if len(src.Headers) != 1 {
		t.Errorf("the source record's headers changed: %v", src.Headers)
	}
}

// TestDeadLetterFits: the dead letter of a record with a 70 KB key, a
// 900 KB value, 100 KB of headers and a 900 KB error text fits the
// broker's default max message size with room to spare, and says what it
// cut: the original sizes and hashes, the headers' total size, the error
// text's start and length.
func TestDeadLetterFits(t *testing.T) {
	huge := strings.Repeat("x", 900_000)
	key := []byte(strings.Repeat("k", 70_000))
	src := &kgo.Record{Topic: "in", Partition: 1, Offset: 7, Key: key, Value: []byte(huge),
		Headers: []kgo.RecordHeader{{Key: "a", Value: make([]byte, 50_000)}, {Key: "b", Value: make([]byte, 50_000)}}}
	errText := "bad: " + huge
	r := topology.DeadLetter("app", src, errors.New(errText))
	size := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		size += len(h.Key) + len(h.Value)
	}
	if size > 512<<10 {
		t.Fatalf("dead letter of %d bytes (key %d, value %d, %d headers), want at most 512 KiB", size, len(r.Key), len(r.Value), len(r.Headers))
	}
	if string(r.Key) != string(key[:topology.DeadLetterMaxKey]) || r.Value == nil || string(r.Value) != huge[:topology.DeadLetterMaxValue] {
		t.Errorf("key %d bytes, value %d bytes: want the originals' first %d and %d bytes", len(r.Key), len(r.Value), topology.DeadLetterMaxKey, topology.DeadLetterMaxValue)
	}
	hash := func(b []byte) []byte { s := sha256.Sum256(b); return hex.AppendEncode(nil, s[:]) }
	wantErr := serde.TruncateText(errText, topology.DeadLetterMaxError)
	if len(wantErr) > topology.DeadLetterMaxError || !strings.HasPrefix(wantErr, "bad: xxx") || !strings.HasSuffix(wantErr, "(900005 bytes, truncated)") {
		t.Errorf("truncated error text %q…: want its start and length in at most %d bytes", wantErr[:16], topology.DeadLetterMaxError)
	}
	wantHeaders(t, r.Headers, []kgo.RecordHeader{
		{Key: "a", Value: make([]byte, 50_000)},
		{Key: topology.HeaderError, Value: []byte(wantErr)},
		{Key: topology.HeaderSourceTopic, Value: []byte("in")},
		{Key: topology.HeaderSourcePartition, Value: []byte("1")},
		{Key: topology.HeaderSourceOffset, Value: []byte("7")},
		{Key: topology.HeaderTruncated, Value: []byte("key,value,headers,error")},
		{Key: topology.HeaderOriginalKeySize, Value: []byte("70000")},
		{Key: topology.HeaderOriginalKeySHA256, Value: hash(key)},
		{Key: topology.HeaderOriginalValueSize, Value: []byte("900000")},
		{Key: topology.HeaderOriginalValueSHA256, Value: hash([]byte(huge))},
		{Key: topology.HeaderOriginalHeadersSize, Value: []byte(strconv.Itoa(100_002))},
	})
}

func wantHeaders(t *testing.T, got, want []kgo.RecordHeader) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d headers, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Key != want[i].Key || string(got[i].Value) != string(want[i].Value) {
			t.Errorf("header %d = %s (%d bytes), want %s (%d bytes)", i, got[i].Key, len(got[i].Value), want[i].Key, len(want[i].Value))
		}
	}
}
