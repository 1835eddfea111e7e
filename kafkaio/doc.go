// Package kafkaio holds weir's Kafka plumbing that is not the engine
// itself: the development broker (franz-go's kfake) used by the demo,
// tests and 'processor dev-broker'.
//
// # Dev broker
//
// StartDevBroker runs a single-node Kafka-protocol broker in the process,
// with transactions, consumer groups (session timeouts down to 1s) and log
// compaction (the cleaner runs every 15s). It listens on 127.0.0.1:9092 by
// default; Advertise makes it hand out another address in metadata, for
// clients in containers. It is for development and tests, not production.
//
// # Concurrency
//
// A DevBroker is safe for concurrent use; Close is idempotent.
package kafkaio
