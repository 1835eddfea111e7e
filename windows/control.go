package windows

import (
	"encoding/binary"
	"strconv"
)

// HeaderKey is the record header that marks a watermark control record on a
// repartition topic. Its value is empty; the record value is the encoded
// [ControlRecord]. Control records are never handed to user functions.
const HeaderKey = "weir.control"

// ControlVersion is the version of the control-record layout this package
// writes.
const ControlVersion = 1

// MaxTaskIDLen bounds ControlRecord.UpstreamTask.
const MaxTaskIDLen = 1024

// ControlRecord is the watermark an upstream task sends to every partition
// of a repartition topic it feeds. See "Watermarks across repartition
// topics" in the package documentation for the byte layout and semantics.
type ControlRecord struct {
	// Version is the layout version; EncodeControl writes ControlVersion
	// whatever it is set to, DecodeControl reports what it read.
	Version uint8
	// UpstreamTask is the upstream task's stable id (e.g. "1_3"); 1 to
	// MaxTaskIDLen bytes.
	UpstreamTask string
	// UpstreamTasks is the task count of the upstream sub-topology: the
	// number of distinct UpstreamTask ids that feed every partition. >= 1.
	UpstreamTasks uint32
	// Watermark is the upstream task's watermark in epoch ms
	// (Tracker.Current); math.MinInt64 means unknown.
	Watermark int64
	// Idle says every input of the upstream task is idle
	// (Tracker.Idle): downstream leaves the task out of the minimum.
	Idle bool
}

const (
	controlFlagIdle = 1 << 0
	controlFixedLen = 1 + 1 + 4 + 8 + 2 // version, flags, tasks, watermark, id length
)

// Validate reports whether c can be encoded and would be accepted by
// DecodeControl.
func (c ControlRecord) Validate() error {
	switch {
	case c.UpstreamTask == "":
		return &ControlError{Problem: "empty upstream task id"}
	case len(c.UpstreamTask) > MaxTaskIDLen:
		return &ControlError{Problem: "upstream task id longer than " + strconv.Itoa(MaxTaskIDLen) + " bytes"}
	case c.UpstreamTasks == 0:
		return &ControlError{Problem: "upstream task count is 0"}
	}
	return nil
}

// EncodeControl encodes c in the version-1 layout. It does not validate c;
// call Validate first if c is not built by the engine.
func EncodeControl(c ControlRecord) []byte {
	b := make([]byte, 0, controlFixedLen+len(c.UpstreamTask))
	var flags byte
	if c.Idle {
		flags |= controlFlagIdle
	}
	b = append(b, ControlVersion, flags)
	b = binary.BigEndian.AppendUint32(b, c.UpstreamTasks)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Watermark))
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.UpstreamTask)))
	b = append(b, c.UpstreamTask...)
	return b
}

// DecodeControl decodes a control record value. Errors unwrap to
// ErrInvalidControl. A version-1 record must have no trailing bytes; a
// record of a higher version is accepted if it starts with the version-1
// fields (later versions may only append), and the trailing bytes are
// ignored. Unknown flag bits are an error in version 1 and ignored in
// later versions. DecodeControl does not retain b.
func DecodeControl(b []byte) (ControlRecord, error) {
	if len(b) < controlFixedLen {
		return ControlRecord{}, &ControlError{Problem: "truncated: " + strconv.Itoa(len(b)) + " bytes"}
	}
	c := ControlRecord{Version: b[0]}
	if c.Version == 0 {
		return ControlRecord{}, &ControlError{Problem: "version 0"}
	}
	flags := b[1]
	if c.Version == 1 && flags&^controlFlagIdle != 0 {
		return ControlRecord{}, &ControlError{Problem: "unknown flags " + strconv.Itoa(int(flags))}
	}
	c.Idle = flags&controlFlagIdle != 0
	c.UpstreamTasks = binary.BigEndian.Uint32(b[2:])
	c.Watermark = int64(binary.BigEndian.Uint64(b[6:]))
	n := int(binary.BigEndian.Uint16(b[14:]))
	rest := b[controlFixedLen:]
	if n > len(rest) {
		return ControlRecord{}, &ControlError{Problem: "truncated task id"}
	}
	if c.Version == 1 && n != len(rest) {
		return ControlRecord{}, &ControlError{Problem: "trailing bytes after version-1 record"}
	}
	c.UpstreamTask = string(rest[:n])
	if err := c.Validate(); err != nil {
		return ControlRecord{}, err
	}
	return c, nil
}
