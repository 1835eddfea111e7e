package windows

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
)

// Header names the engine puts on window results. Values are UTF-8 text.
const (
	// HeaderWindowStart is the window start as a decimal string (epoch ms,
	// or element ordinal for count windows).
	HeaderWindowStart = "weir.window.start"
	// HeaderWindowEnd is the window end as a decimal string.
	HeaderWindowEnd = "weir.window.end"
	// HeaderFinal is "true" for a final result and "false" for an early
	// update.
	HeaderFinal = "weir.final"
	// HeaderResultID is [ResultID] of the result.
	HeaderResultID = "weir.result.id"
)

// Result is one window result handed to the emit callback of
// [Operator.Advance].
type Result[A any] struct {
	Key    []byte // the record key; owned by the callee, may be retained
	Window Window
	Value  A
	Final  bool // false for an early (updating) result
}

// Header is a record header, shaped like franz-go's kgo.RecordHeader so
// the engine can convert it field by field.
type Header struct {
	Key   string
	Value []byte
}

// AppendHeaders appends the four result headers (start, end, final, result
// id) for a result of operator in app and returns the extended slice. The
// values share one allocation.
func AppendHeaders(dst []Header, app, operator string, key []byte, w Window, final bool) []Header {
	b := make([]byte, 0, 2*20+5+2*resultIDBytes)
	b = strconv.AppendInt(b, w.Start, 10)
	start := b[:len(b):len(b)]
	b = strconv.AppendInt(b, w.End, 10)
	end := b[len(start):len(b):len(b)]
	b = strconv.AppendBool(b, final)
	fin := b[len(start)+len(end) : len(b) : len(b)]
	n := len(b)
	b = appendResultID(b, app, operator, key, w)
	return append(dst,
		Header{Key: HeaderWindowStart, Value: start},
		Header{Key: HeaderWindowEnd, Value: end},
		Header{Key: HeaderFinal, Value: fin},
		Header{Key: HeaderResultID, Value: b[n:]},
	)
}

// ResultID is a stable id of the result of one window of one key of one
// operator of one application, for consumers that de-duplicate. Early
// updates and the final result of a window share the id (the newest one
// wins); a window is emitted as final once, but a result can be seen twice
// in at-least-once mode, and that is what the id is for.
//
// It is the lowercase hex of the first 16 bytes of SHA-256 over
//
//	uvarint(len(app)) app uvarint(len(operator)) operator
//	uvarint(len(key)) key int64be(start) int64be(end)
//
// (32 characters). The length prefixes make the encoding unambiguous.
func ResultID(app, operator string, key []byte, w Window) string {
	return string(appendResultID(nil, app, operator, key, w))
}

const resultIDBytes = 16 // of the SHA-256, in hex in the id

func appendResultID(dst []byte, app, operator string, key []byte, w Window) []byte {
	var buf [256]byte // on the stack for the usual lengths
	b := buf[:0]
	b = binary.AppendUvarint(b, uint64(len(app)))
	b = append(b, app...)
	b = binary.AppendUvarint(b, uint64(len(operator)))
	b = append(b, operator...)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.BigEndian.AppendUint64(b, uint64(w.Start))
	b = binary.BigEndian.AppendUint64(b, uint64(w.End))
	sum := sha256.Sum256(b)
	return hex.AppendEncode(dst, sum[:resultIDBytes])
}
