package topology

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/serde"
)

// DLQTopic returns the dead-letter topic of an application:
// "<app-id>-dlq".
func DLQTopic(appID string) string { return appID + "-dlq" }

// Headers on dead-letter records, besides the record's own headers
// (HeaderSourceTopic, HeaderSourcePartition and HeaderSourceOffset too).
const (
	// HeaderError is the error's text, at most DeadLetterMaxError bytes.
	HeaderError = "weir.error"
	// HeaderTruncated lists, comma-separated, what DeadLetter cut to make
	// the dead letter fit: "key", "value", "headers", "error". Absent
	// when nothing was cut.
	HeaderTruncated = "weir.truncated"
	// HeaderOriginalKeySize and HeaderOriginalKeySHA256 are the size
	// (decimal) and SHA-256 (hex) of a truncated key.
	HeaderOriginalKeySize   = "weir.original.key.size"
	HeaderOriginalKeySHA256 = "weir.original.key.sha256"
	// HeaderOriginalValueSize and HeaderOriginalValueSHA256 are the size
	// and SHA-256 of a truncated value.
	HeaderOriginalValueSize   = "weir.original.value.size"
	HeaderOriginalValueSHA256 = "weir.original.value.sha256"
	// HeaderOriginalHeadersSize is the total size (keys and values) of
	// the record's own headers when some were dropped.
	HeaderOriginalHeadersSize = "weir.original.headers.size"
)

// Limits of a dead letter. Together (about 340 KiB with the weir headers)
// they keep a dead letter well under the broker's default max message
// size (Kafka's message.max.bytes, 1,048,588 bytes) and franz-go's
// default batch limit (1,000,012 bytes): a dead letter the broker refused
// would fail the transaction, and its replay would fail again, forever.
const (
	// DeadLetterMaxKey is the largest key a dead letter carries: 16 KiB.
	DeadLetterMaxKey = 16 << 10
	// DeadLetterMaxValue is the largest value a dead letter carries:
	// 256 KiB.
	DeadLetterMaxValue = 256 << 10
	// DeadLetterMaxHeaders bounds the record's own headers (keys and
	// values) a dead letter carries: 64 KiB; the headers after the first
	// that does not fit are dropped.
	DeadLetterMaxHeaders = 64 << 10
	// DeadLetterMaxError is the longest error text a dead letter
	// carries: 4 KiB.
	DeadLetterMaxError = 4 << 10
)

// DeadLetter returns the dead letter of rec, which failed with err: a
// record for DLQTopic(appID), partition 0, with rec's key, value,
// timestamp and headers, and headers saying why it failed (HeaderError)
// and where it came from (HeaderSourceTopic, HeaderSourcePartition,
// HeaderSourceOffset). What exceeds the DeadLetterMax limits is cut, and
// HeaderTruncated and the HeaderOriginal headers say what and how much, so
// that a dead letter always fits the broker. rec is not modified.
//
// The engine and the topologytest driver both build their dead letters
// with it.
func DeadLetter(appID string, rec *kgo.Record, err error) *kgo.Record {
	var cut []string
	var extra []kgo.RecordHeader
	key, value := rec.Key, rec.Value
	if len(key) > DeadLetterMaxKey {
		cut = append(cut, "key")
		extra = append(extra, sizeAndHash(HeaderOriginalKeySize, HeaderOriginalKeySHA256, key)...)
		key = key[:DeadLetterMaxKey:DeadLetterMaxKey]
	}
	if len(value) > DeadLetterMaxValue {
		cut = append(cut, "value")
		extra = append(extra, sizeAndHash(HeaderOriginalValueSize, HeaderOriginalValueSHA256, value)...)
		value = value[:DeadLetterMaxValue:DeadLetterMaxValue]
	}
	own, total := rec.Headers, 0
	for i, h := range rec.Headers {
		total += len(h.Key) + len(h.Value)
		if total > DeadLetterMaxHeaders && len(own) == len(rec.Headers) {
			own = rec.Headers[:i:i]
		}
	}
	if len(own) < len(rec.Headers) {
		cut = append(cut, "headers")
		extra = append(extra, kgo.RecordHeader{Key: HeaderOriginalHeadersSize, Value: strconv.AppendInt(nil, int64(total), 10)})
	}
	text := err.Error()
	if len(text) > DeadLetterMaxError {
		cut = append(cut, "error")
		text = serde.TruncateText(text, DeadLetterMaxError)
	}
	h := make([]kgo.RecordHeader, 0, len(own)+5+len(extra))
	h = append(h, own...)
	h = append(h,
		kgo.RecordHeader{Key: HeaderError, Value: []byte(text)},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(rec.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(rec.Partition), 10)},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, rec.Offset, 10)},
	)
	if len(cut) > 0 {
		h = append(h, kgo.RecordHeader{Key: HeaderTruncated, Value: []byte(strings.Join(cut, ","))})
		h = append(h, extra...)
	}
	return &kgo.Record{Topic: DLQTopic(appID), Partition: 0, Key: key, Value: value, Headers: h, Timestamp: rec.Timestamp}
}

func sizeAndHash(sizeKey, hashKey string, b []byte) []kgo.RecordHeader {
	sum := sha256.Sum256(b)
	return []kgo.RecordHeader{
		{Key: sizeKey, Value: strconv.AppendInt(nil, int64(len(b)), 10)},
		{Key: hashKey, Value: hex.AppendEncode(nil, sum[:])},
	}
}

// MaxOutputBytes bounds a record a task writes to a sink or repartition
// topic (key, value and headers): 976 KiB, under franz-go's default batch
// limit (ProducerBatchMaxBytes, 1,000,012 bytes) with room for the batch
// and record framing. The producer would refuse a larger record, failing
// the transaction, and its replay would fail again, forever; instead the
// sink fails it as its operator's error, so the error policy sets the
// input record aside.
const MaxOutputBytes = 976 << 10

// recordBytes is the size of r's key, value and headers.
func recordBytes(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}
