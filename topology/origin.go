package topology

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// HeaderOrigin names the input record a record came from, across
// repartition topics: "<topic>/<partition>@<offset>" (topic names have no
// '/' or '@'), e.g. "clicks/2@17". A repartition sink appends it, last, to
// the record it writes for a record the task read from an input topic,
// and copies it unchanged for a record that carried it (read from a
// repartition topic), so it names the first hop's input record whatever
// the number of hops. The repartition source takes it off again: operators
// and outputs never see it. Dead letters of records read from a
// repartition topic keep it (they are the records as read); late records
// carry it spelled out (HeaderOriginTopic, HeaderOriginPartition,
// HeaderOriginOffset). Records emitted outside a record (window results,
// timers' records, a Combine's) have no origin.
//
// One compact header, not three, because it travels on every record of
// every repartition topic: three cost about three times the bytes and
// allocations.
const HeaderOrigin = "weir.origin"

// Headers on late records naming the input record (see HeaderOrigin):
// the topic, and the decimal partition and offset.
const (
	HeaderOriginTopic     = "weir.origin.topic"
	HeaderOriginPartition = "weir.origin.partition"
	HeaderOriginOffset    = "weir.origin.offset"
)

// ParseOrigin parses the value of a HeaderOrigin header.
func ParseOrigin(v []byte) (topic string, partition int32, offset int64, err error) {
	at := bytes.LastIndexByte(v, '@')
	slash := bytes.LastIndexByte(v[:max(at, 0)], '/')
	if at < 0 || slash <= 0 {
		return "", 0, 0, fmt.Errorf("topology: origin %q: want <topic>/<partition>@<offset>", v)
	}
	p, err := strconv.ParseInt(string(v[slash+1:at]), 10, 32)
	if err != nil {
		return "", 0, 0, fmt.Errorf("topology: origin %q: partition: %w", v, err)
	}
	o, err := strconv.ParseInt(string(v[at+1:]), 10, 64)
	if err != nil {
		return "", 0, 0, fmt.Errorf("topology: origin %q: offset: %w", v, err)
	}
	return string(v[:slash]), int32(p), o, nil
}

// originWriter appends HeaderOrigin for a repartition sink. Headers and
// their values are carved out of blocks shared by many records (records
// are never modified once produced, and each record's headers are capped
// at their length, so an append reallocates): one allocation per block
// instead of two per record.
type originWriter struct {
	hs  []kgo.RecordHeader // the current header block; hs[nh:] is free
	nh  int
	buf []byte // the current value block; buf[nb:] is free
	nb  int
}

const (
	originHeaderBlock = 256
	originValueBlock  = 4 << 10
	originValueMax    = 1 + 11 + 1 + 20 // the value's bytes besides the topic
)

// withOrigin returns h with the origin header of the record being
// processed appended, in a new slice (h is not the caller's to change), or
// h itself when there is no record (outside Task.Process).
func (w *originWriter) withOrigin(ctx *Context, h []kgo.RecordHeader) []kgo.RecordHeader {
	src := ctx.src
	if src == nil {
		return h
	}
	n := len(h) + 1
	if len(w.hs)-w.nh < n {
		w.hs, w.nh = make([]kgo.RecordHeader, max(originHeaderBlock, n)), 0
	}
	out := w.hs[w.nh : w.nh+n : w.nh+n]
	w.nh += n
	copy(out, h)
	v := ctx.origin
	if v == nil {
		if len(w.buf)-w.nb < len(src.Topic)+originValueMax {
			w.buf, w.nb = make([]byte, max(originValueBlock, len(src.Topic)+originValueMax)), 0
		}
		b := w.buf[w.nb:w.nb]
		b = append(b, src.Topic...)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(src.Partition), 10)
		b = append(b, '@')
		b = strconv.AppendInt(b, src.Offset, 10)
		v = b[:len(b):len(b)]
		w.nb += len(b)
	}
	out[n-1] = kgo.RecordHeader{Key: HeaderOrigin, Value: v}
	return out
}

// appendOriginHeaders appends HeaderOriginTopic, HeaderOriginPartition and
// HeaderOriginOffset.
func appendOriginHeaders(h []kgo.RecordHeader, topic string, partition int32, offset int64) []kgo.RecordHeader {
	b := make([]byte, 0, len(topic)+32)
	b = append(b, topic...)
	t := len(b)
	b = strconv.AppendInt(b, int64(partition), 10)
	p := len(b)
	b = strconv.AppendInt(b, offset, 10)
	return append(h,
		kgo.RecordHeader{Key: HeaderOriginTopic, Value: b[:t:t]},
		kgo.RecordHeader{Key: HeaderOriginPartition, Value: b[t:p:p]},
		kgo.RecordHeader{Key: HeaderOriginOffset, Value: b[p:]},
	)
}
