package state

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Checkpoint is a task's checkpoint record: what the task's state on disk
// corresponds to. The engine writes it with Task.Apply after the Kafka
// transaction of the checkpoint committed, and with Task.Restore.
type Checkpoint struct {
	// ID is the checkpoint id the engine assigned.
	ID uint64
	// Inputs is the next offset to consume per input topic-partition.
	Inputs []Offset
	// Changelogs maps a store name to the next offset to read in this
	// task's partition of the store's changelog topic.
	Changelogs map[string]int64
	// Watermarks is the watermark, epoch ms, per input topic-partition.
	Watermarks []Watermark
}

// Offset is a position in one topic-partition.
type Offset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Watermark is the event-time watermark of one input topic-partition,
// or, with Upstream set, the watermark that upstream task announced on a
// repartition partition.
type Watermark struct {
	Topic     string
	Partition int32
	Upstream  string
	Millis    int64
}

// checkpointVersion is the first byte of an encoded Checkpoint. Version 1
// had no Watermark.Upstream; DecodeCheckpoint still reads it.
const checkpointVersion byte = 2

// Encode returns the binary form of c (format v2, see doc.go "Checkpoint
// record"). Changelogs are written in store-name order, so equal
// checkpoints encode to equal bytes.
func (c Checkpoint) Encode() []byte {
	b := make([]byte, 0, 16+len(c.Inputs)*24+len(c.Changelogs)*24+len(c.Watermarks)*24)
	b = append(b, checkpointVersion)
	b = binary.AppendUvarint(b, c.ID)
	b = binary.AppendUvarint(b, uint64(len(c.Inputs)))
	for _, o := range c.Inputs {
		b = appendLenPrefixed(b, o.Topic)
		b = binary.AppendVarint(b, int64(o.Partition))
		b = binary.AppendVarint(b, o.Offset)
	}
	stores := make([]string, 0, len(c.Changelogs))
	for s := range c.Changelogs {
		stores = append(stores, s)
	}
	sort.Strings(stores)
	b = binary.AppendUvarint(b, uint64(len(stores)))
	for _, s := range stores {
		b = appendLenPrefixed(b, s)
		b = binary.AppendVarint(b, c.Changelogs[s])
	}
	b = binary.AppendUvarint(b, uint64(len(c.Watermarks)))
	for _, w := range c.Watermarks {
		b = appendLenPrefixed(b, w.Topic)
		b = binary.AppendVarint(b, int64(w.Partition))
		b = appendLenPrefixed(b, w.Upstream)
		b = binary.AppendVarint(b, w.Millis)
	}
	return b
}

// clone returns a deep copy of c.
func (c Checkpoint) clone() Checkpoint {
	out := Checkpoint{ID: c.ID, Inputs: slices.Clone(c.Inputs), Watermarks: slices.Clone(c.Watermarks)}
	if c.Changelogs != nil {
		out.Changelogs = make(map[string]int64, len(c.Changelogs))
		for k, v := range c.Changelogs {
			out.Changelogs[k] = v
		}
	}
	return out
}

// DecodeCheckpoint parses the output of Checkpoint.Encode. Errors wrap
// ErrBadCheckpoint. Empty lists and maps decode as nil.
func DecodeCheckpoint(b []byte) (Checkpoint, error) {
	var c Checkpoint
	if len(b) == 0 {
		return c, fmt.Errorf("%w: empty", ErrBadCheckpoint)
	}
	version := b[0]
	if version != 1 && version != checkpointVersion {
		return c, fmt.Errorf("%w: version %d, want 1 or %d", ErrBadCheckpoint, version, checkpointVersion)
	}
	d := decoder{b: b[1:]}
	c.ID = d.uvarint()
	// Each element takes at least 3 bytes (empty string, two varints), so
	// a count larger than the remaining bytes / 3 is corrupt; checking it
	// keeps a corrupt count from allocating.
	if n := d.count(3); n > 0 {
		c.Inputs = make([]Offset, n)
		for i := range c.Inputs {
			c.Inputs[i] = Offset{Topic: d.str(), Partition: d.int32(), Offset: d.varint()}
		}
	}
	if n := d.count(2); n > 0 {
		c.Changelogs = make(map[string]int64, n)
		for range n {
			s := d.str()
			if _, dup := c.Changelogs[s]; dup && d.err == nil {
				d.err = fmt.Errorf("duplicate store %q", s)
			}
			c.Changelogs[s] = d.varint()
		}
	}
	if n := d.count(3); n > 0 {
		c.Watermarks = make([]Watermark, n)
		for i := range c.Watermarks {
			w := Watermark{Topic: d.str(), Partition: d.int32()}
			if version > 1 {
				w.Upstream = d.str()
			}
			w.Millis = d.varint()
			c.Watermarks[i] = w
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %w", ErrBadCheckpoint, d.err)
	}
	return c, nil
}

// decoder reads varint-framed fields and remembers the first error; after
// an error every read returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or malformed %s", what)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int32() int32 {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		if d.err == nil {
			d.err = fmt.Errorf("partition %d out of int32 range", v)
		}
		d.b = nil
		return 0
	}
	return int32(v)
}

// count reads an element count and checks it against the remaining bytes,
// given the minimum encoded size of one element.
func (d *decoder) count(minElem int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/minElem) {
		d.err = fmt.Errorf("count %d exceeds the %d remaining bytes", n, len(d.b))
		d.b = nil
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
