package topologytest

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// Record is one record of an in-memory topic.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil: no key
	Value     []byte // nil: a tombstone
	Timestamp int64  // epoch ms
	Headers   []kgo.RecordHeader

	seq int64 // global write order
}

// Header returns the value of the first header named key.
func (r Record) Header(key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// Control reports whether r is a watermark control record (on a
// repartition topic); user functions never see those.
func (r Record) Control() bool {
	_, ok := r.Header(windows.HeaderKey)
	return ok
}

func (r Record) String() string {
	return fmt.Sprintf("%s[%d]@%d %q=%q ts=%d", r.Topic, r.Partition, r.Offset, r.Key, r.Value, r.Timestamp)
}

func (r Record) clone() Record {
	r.Key, r.Value, r.Headers = bytes.Clone(r.Key), bytes.Clone(r.Value), slices.Clone(r.Headers)
	return r
}

// kgo returns the record as a task reads it.
func (r Record) kgo() *kgo.Record {
	c := r.clone()
	return &kgo.Record{Topic: c.Topic, Partition: c.Partition, Offset: c.Offset, Key: c.Key, Value: c.Value, Timestamp: time.UnixMilli(c.Timestamp), Headers: c.Headers}
}

func recordOf(rec *kgo.Record) Record {
	return Record{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: bytes.Clone(rec.Key), Value: bytes.Clone(rec.Value), Timestamp: rec.Timestamp.UnixMilli(), Headers: slices.Clone(rec.Headers)}
}

// Input pipes typed records into a source topic through serdes.
type Input[K, V any] struct {
	d     *Driver
	topic string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
}

// NewInput returns an Input for topic.
func NewInput[K, V any](d *Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) *Input[K, V] {
	return &Input[K, V]{d: d, topic: topic, ks: ks, vs: vs}
}

func (in *Input[K, V]) encode(key K, value V) ([]byte, []byte, error) {
	kb, err := in.ks.Encode(key)
	if err != nil {
		return nil, nil, fmt.Errorf("topologytest: %s: encode key: %w", in.topic, err)
	}
	vb, err := in.vs.Encode(value)
	if err != nil {
		return nil, nil, fmt.Errorf("topologytest: %s: encode value: %w", in.topic, err)
	}
	return kb, vb, nil
}

// Pipe encodes the record, appends it to partition and runs (Driver.Pipe).
func (in *Input[K, V]) Pipe(partition int32, key K, value V, ts int64) error {
	if err := in.Append(partition, key, value, ts); err != nil {
		return err
	}
	return in.d.Run()
}

// PipeKeyed is Pipe to the partition a Java producer would pick for the
// encoded key (murmur2).
func (in *Input[K, V]) PipeKeyed(key K, value V, ts int64) error {
	kb, _, err := in.encode(key, value)
	if err != nil {
		return err
	}
	p, err := in.d.PartitionFor(in.topic, kb)
	if err != nil {
		return err
	}
	return in.Pipe(p, key, value, ts)
}

// Append encodes the record and appends it without running
// (Driver.Append).
func (in *Input[K, V]) Append(partition int32, key K, value V, ts int64) error {
	kb, vb, err := in.encode(key, value)
	if err != nil {
		return err
	}
	return in.d.Append(in.topic, partition, kb, vb, ts)
}

// OutputOf returns the records of topic decoded with ks and vs, in write
// order, leaving out control records.
func OutputOf[K, V any](d *Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) ([]topology.Record[K, V], error) {
	var out []topology.Record[K, V]
	for _, r := range d.Output(topic) {
		if r.Control() {
			continue
		}
		k, err := ks.Decode(r.Key)
		if err != nil {
			return nil, fmt.Errorf("topologytest: %s: decode key: %w", r, err)
		}
		v, err := vs.Decode(r.Value)
		if err != nil {
			return nil, fmt.Errorf("topologytest: %s: decode value: %w", r, err)
		}
		out = append(out, topology.Record[K, V]{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
	}
	return out, nil
}
