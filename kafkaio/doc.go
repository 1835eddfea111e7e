// Package kafkaio holds weir's Kafka plumbing that is not the engine
// itself: the development broker (franz-go's kfake) used by the demo,
// tests and 'processor dev-broker'.
//
// # Dev broker
//
// StartDevBroker runs a single-node Kafka-protocol broker in the process,
// with transactions, consumer groups (session timeouts down to 1s) and log
// compaction. kfake's own cleaner is off: it drops a committed value when a
// transaction that is still open wrote the key again, and the value is
// gone when that transaction aborts. The DevBroker's cleaner (every 15s,
// CleanerInterval) compacts only when no partition of a compacted topic
// has an open transaction, holding produce requests while it checks and
// compacts; under steady transactional load compaction waits for a quiet
// moment. After compacting it writes an abort marker for every
// transactional producer on every compacted partition: kfake's compaction
// can drop an abort marker while keeping the aborted transaction in its
// index, and readers would then skip that producer's next commits.
//
// With DataDir the broker survives a stop and a kill: after a kill, kfake
// aborts the transactions that were open without writing abort markers
// (readers then skip the same producer's later commits), so the next start
// writes those markers before it serves clients.
//
// It listens on 127.0.0.1:9092 by default; Advertise makes it hand out
// another address in metadata, for clients in containers. It is for
// development and tests, not production.
//
// # Concurrency
//
// A DevBroker is safe for concurrent use; Close is idempotent.
package kafkaio
