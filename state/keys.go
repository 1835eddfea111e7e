package state

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// Key layout in Badger (see doc.go, "Key layout"):
//
//	0x00 "format"                                   -> on-disk format version
//	0x01 uvarint(len(task)) task 0x00               -> checkpoint record
//	0x01 uvarint(len(task)) task 0x01
//	     uvarint(len(store)) store userKey          -> store entry
//
// The length prefixes make every task prefix and every store prefix
// prefix-free: "0_1" and "0_10" encode as 0x01 0x03 "0_1" and
// 0x01 0x04 "0_10", which share no prefix relation.
const (
	nsMeta byte = 0x00
	nsTask byte = 0x01

	kindCheckpoint byte = 0x00
	kindStore      byte = 0x01
)

// formatKey holds the on-disk format version of the database.
var formatKey = []byte{nsMeta, 'f', 'o', 'r', 'm', 'a', 't'}

// formatVersion is the current on-disk format version.
const formatVersion byte = 1

// appendLenPrefixed appends uvarint(len(s)) and s.
func appendLenPrefixed(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// taskPrefix is the prefix of every key of task id.
func taskPrefix(id string) []byte {
	return appendLenPrefixed([]byte{nsTask}, id)
}

// checkpointKey is the key of the checkpoint record of task id.
func checkpointKey(id string) []byte {
	return append(taskPrefix(id), kindCheckpoint)
}

// storePrefix is the prefix of every entry of one store of task id.
func storePrefix(id, store string) []byte {
	p := append(taskPrefix(id), kindStore)
	return appendLenPrefixed(p, store)
}

// errBadKey reports a key in the task namespace that does not parse.
var errBadKey = errors.New("state: malformed task key")

// parseTaskID returns the task id of a key in the task namespace and the
// length of the task prefix.
func parseTaskID(key []byte) (string, int, error) {
	if len(key) < 2 || key[0] != nsTask {
		return "", 0, errBadKey
	}
	n, w := binary.Uvarint(key[1:])
	if w <= 0 || n > uint64(len(key)-1-w) {
		return "", 0, errBadKey
	}
	end := 1 + w + int(n)
	return string(key[1+w : end]), end, nil
}

// prefixSuccessor returns the smallest key greater than every key with
// prefix p, or nil when there is none (p is all 0xff).
func prefixSuccessor(p []byte) []byte {
	s := bytes.Clone(p)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] != 0xff {
			s[i]++
			return s[:i+1]
		}
	}
	return nil
}
