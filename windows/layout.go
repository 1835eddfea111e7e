package windows

import (
	"encoding/binary"
	"fmt"
)

// Store layout (see "Store layout" in the package documentation).
const (
	prefixMeta  = 0x00
	prefixEntry = 0x01
	prefixCount = 0x02
	prefixPane  = 0x03

	entryVersion = 1
	flagComplete = 1 << 0 // count window with n elements, awaiting emission

	signBit = 1 << 63
)

var metaWatermarkKey = []byte{prefixMeta, 'w'}

// appendEntryKey appends the store key of the window of key starting at
// start: 0x01 | uint32be(len(key)) | key, then start as big-endian with the
// sign bit flipped so that byte order is numeric order.
func appendEntryKey(dst, key []byte, start int64) []byte {
	return appendStartKey(dst, prefixEntry, key, start)
}

// appendPaneKey appends the store key of the pane of key starting at
// start: as appendEntryKey, with prefix 0x03.
func appendPaneKey(dst, key []byte, start int64) []byte {
	return appendStartKey(dst, prefixPane, key, start)
}

func appendStartKey(dst []byte, prefix byte, key []byte, start int64) []byte {
	dst = append(dst, prefix)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(key)))
	dst = append(dst, key...)
	return binary.BigEndian.AppendUint64(dst, uint64(start)^signBit)
}

// decodeEntryKey decodes a key appendEntryKey or appendPaneKey wrote.
func decodeEntryKey(k []byte) (key []byte, start int64, err error) {
	if len(k) < 1+4+8 || (k[0] != prefixEntry && k[0] != prefixPane) {
		return nil, 0, fmt.Errorf("%w: entry key of %d bytes", ErrCorruptState, len(k))
	}
	n := binary.BigEndian.Uint32(k[1:])
	if uint64(len(k)) != 1+4+uint64(n)+8 {
		return nil, 0, fmt.Errorf("%w: entry key length %d for a %d-byte key", ErrCorruptState, len(k), n)
	}
	return k[5 : 5+n], int64(binary.BigEndian.Uint64(k[5+n:]) ^ signBit), nil
}

// appendMetaCountKey appends 0x02 | uint32be(len(key)) | key: the next
// count-window start of key.
func appendMetaCountKey(dst, key []byte) []byte {
	dst = append(dst, prefixCount)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(key)))
	return append(dst, key...)
}

type entry struct {
	flags byte
	end   int64
	count uint64
	acc   []byte // aliases the decoded slice
}

// appendEntry appends version | flags | int64be(end) | uvarint(count) | acc.
func appendEntry(dst []byte, flags byte, end int64, count uint64, acc []byte) []byte {
	dst = append(dst, entryVersion, flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(end))
	dst = binary.AppendUvarint(dst, count)
	return append(dst, acc...)
}

func decodeEntry(b []byte) (entry, error) {
	if len(b) < 2+8+1 {
		return entry{}, fmt.Errorf("%w: entry of %d bytes", ErrCorruptState, len(b))
	}
	if b[0] != entryVersion {
		return entry{}, fmt.Errorf("%w: entry version %d", ErrCorruptState, b[0])
	}
	e := entry{flags: b[1], end: int64(binary.BigEndian.Uint64(b[2:]))}
	c, n := binary.Uvarint(b[10:])
	if n <= 0 {
		return entry{}, fmt.Errorf("%w: entry count", ErrCorruptState)
	}
	e.count = c
	e.acc = b[10+n:]
	return e, nil
}
