// Package changelog is the Kafka side of weir's state: the changelog topic
// names and record format, and reading a changelog partition back to
// restore a task's state.
//
// # Topics
//
// Each store has a changelog topic, Topic(app, store) =
// "<app>-<store>-changelog", with as many partitions as the input of the
// store's sub-topology: task "<subtopology>_<partition>" writes partition
// <partition>. The engine creates the topics with TopicConfigs
// (cleanup.policy=compact) and produces the task's dirty writes
// (state.Task.ForEachDirty) to them inside each checkpoint's transaction
// (DESIGN.md §3).
//
// # Record format
//
// key   = the store key bytes, unchanged.
// value = a frame around the stored value bytes, or nil for a delete:
//
//	byte 0   magic 0x57 ('W')
//	byte 1   frame version, 1
//	bytes 2… the stored value (for typed handles, state's value encoding,
//	         which carries the TTL expiry)
//
// A nil value (a Kafka tombstone) means the key was deleted; compaction
// eventually removes it. EncodeValue never returns nil, so an empty stored
// value is distinct from a delete. DecodeValue rejects other magic bytes
// (ErrBadMagic), versions it does not know (ErrUnknownVersion; a newer
// writer) and non-nil values shorter than the header (ErrShortFrame). A
// future version bumps byte 1; readers keep decoding every older one.
//
// # Restore
//
// ReadRange reads one partition with read_committed isolation from a given
// offset up to the partition's last stable offset as of its start, hands
// the decoded records to a callback batch by batch, and returns
// RestoreStats. It ends correctly when the range is empty, when the range
// ends in transaction markers (it keeps control records to see them), when
// aborted data is filtered out, and when compaction removed records,
// including the last ones of the range. The engine writes each batch with
// state.Task.Restore, advancing the checkpoint's changelog offset.
//
// # Concurrency
//
// The functions are safe for concurrent use. ReadRange calls its callback
// on the calling goroutine; each call builds, and closes, its own client.
package changelog
