package integration

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/builtin"
)

// TestPassthroughKeepsRecords checks builtin.Passthrough's contract: every
// record is copied unchanged — key and value (null stays null, empty stays
// empty), headers in order, timestamp — keyed records to their murmur2
// partition and records without a key to the partition their task sticks
// to.
func TestPassthroughKeepsRecords(t *testing.T) {
	t.Parallel()
	errs := capErrors(t)
	const (
		in, out = "raw", "raw-copy"
		app     = "passthrough"
		nRecs   = 400
	)
	c := newCluster(t)
	c.createTopic(in, 8)
	r := startEngine(t, c, builtin.Passthrough(in, out), app, nil)

	base := time.UnixMilli(time.Now().Add(-24 * time.Hour).UnixMilli())
	var recs []*kgo.Record
	for i := range nRecs {
		rec := &kgo.Record{
			Topic:     in,
			Value:     fmt.Appendf(nil, "%d", i), // unique: identifies the record
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
			Headers:   []kgo.RecordHeader{{Key: "n", Value: fmt.Appendf(nil, "%d", i)}, {Key: "dup", Value: []byte("a")}, {Key: "dup", Value: nil}},
		}
		switch i % 4 {
		case 0:
			rec.Key = fmt.Appendf(nil, "k%d", i%13)
		case 1:
			rec.Key = nil
		case 2:
			rec.Key = []byte{}
		case 3:
			rec.Key = []byte{0, 0xff, 'x'}
		}
		recs = append(recs, rec)
	}
	// A null and an empty value, told apart by their headers' "n".
	recs = append(recs,
		&kgo.Record{Topic: in, Key: []byte("null-value"), Value: nil, Headers: []kgo.RecordHeader{{Key: "n", Value: []byte("null")}}},
		&kgo.Record{Topic: in, Key: []byte("empty-value"), Value: []byte{}, Headers: []kgo.RecordHeader{{Key: "n", Value: []byte("empty")}}},
	)
	c.produce(recs)

	got := c.readOutput(app, r.e.Plan().SourceTopics(), out, len(recs))
	outParts := c.partitions(out)
	byN := make(map[string]*kgo.Record)
	for _, rec := range recs {
		byN[string(rec.Headers[0].Value)] = rec
	}
	for _, g := range got {
		if len(g.Headers) == 0 || g.Headers[0].Key != "n" {
			errs.Errorf("%s[%d]@%d: headers %v, want the input's", out, g.Partition, g.Offset, g.Headers)
			continue
		}
		n := string(g.Headers[0].Value)
		w, ok := byN[n]
		if !ok {
			errs.Errorf("%s[%d]@%d: record %q twice or unknown", out, g.Partition, g.Offset, n)
			continue
		}
		delete(byN, n)
		if !bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) {
			errs.Errorf("record %s: key %q (nil %v), want %q (nil %v)", n, g.Key, g.Key == nil, w.Key, w.Key == nil)
		}
		if !bytes.Equal(g.Value, w.Value) || (g.Value == nil) != (w.Value == nil) {
			errs.Errorf("record %s: value %q (nil %v), want %q (nil %v)", n, g.Value, g.Value == nil, w.Value, w.Value == nil)
		}
		if !slices.EqualFunc(g.Headers, w.Headers, func(a, b kgo.RecordHeader) bool {
			return a.Key == b.Key && bytes.Equal(a.Value, b.Value)
		}) {
			errs.Errorf("record %s: headers %v, want %v", n, g.Headers, w.Headers)
		}
		if !g.Timestamp.Equal(w.Timestamp) {
			errs.Errorf("record %s: timestamp %v, want %v", n, g.Timestamp, w.Timestamp)
		}
		if w.Key == nil {
			// Below topology.StickyBytes per task, a task writes
			// every record without a key to one partition, the one
			// of its own number.
			if want := w.Partition % outParts; g.Partition != want {
				errs.Errorf("record %s without a key read from %s[%d] went to %s[%d], want %d", n, in, w.Partition, out, g.Partition, want)
			}
		} else if p := murmur2(out, w.Key, outParts); g.Partition != p {
			errs.Errorf("record %s: key %q in %s[%d], murmur2 picks %d", n, w.Key, out, g.Partition, p)
		}
	}
	for n := range byN {
		t.Errorf("record %s is missing", n)
	}
}
