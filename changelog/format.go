package changelog

import "fmt"

const (
	// frameMagic is the first byte of every framed changelog value.
	frameMagic byte = 0x57 // 'W'
	// frameVersion is the frame version this build writes and reads.
	frameVersion byte = 1
	headerLen         = 2
)

// Topic returns the changelog topic of a store: "<app>-<store>-changelog".
func Topic(app, store string) string {
	return app + "-" + store + "-changelog"
}

// EncodeValue frames a stored value for a changelog record (see doc.go,
// "Record format"). The result is never nil, so even an empty value is
// distinct from a tombstone.
func EncodeValue(v []byte) []byte {
	out := make([]byte, headerLen, headerLen+len(v))
	out[0], out[1] = frameMagic, frameVersion
	return append(out, v...)
}

// DecodeValue unframes a changelog record value. A nil value is a
// tombstone: deleted is true. The returned v aliases b.
func DecodeValue(b []byte) (v []byte, deleted bool, err error) {
	if b == nil {
		return nil, true, nil
	}
	if len(b) < headerLen {
		return nil, false, fmt.Errorf("%w: %d bytes", ErrShortFrame, len(b))
	}
	if b[0] != frameMagic {
		return nil, false, fmt.Errorf("%w: 0x%02x, want 0x%02x", ErrBadMagic, b[0], frameMagic)
	}
	if b[1] != frameVersion {
		return nil, false, fmt.Errorf("%w: %d, this build reads %d", ErrUnknownVersion, b[1], frameVersion)
	}
	return b[headerLen:], false, nil
}

// TopicConfigs returns the topic configs for creating a changelog topic
// (for kadm's CreateTopics): compacted, so the topic keeps the last value
// per key and tombstones eventually remove keys. A new map each call.
func TopicConfigs() map[string]*string {
	s := func(v string) *string { return &v }
	return map[string]*string{
		// Keep the latest record per key, not a time window of records.
		"cleanup.policy": s("compact"),
		// Records carry the writer's timestamp; restore does not use it.
		"message.timestamp.type": s("CreateTime"),
	}
}
