// Package serde turns typed values into Kafka record bytes and back.
//
// # Serde
//
// A [Serde] is a pair of functions, Encode and Decode, for one Go type. The
// topology DSL takes a key serde and a value serde wherever records enter or
// leave Kafka (sources, sinks, repartition topics) and wherever state is
// stored. Built-ins: [Bytes], [String], [Int64] and [JSON].
//
// # Errors
//
// Decode failures are reported as *[DecodeError]; the engine hands such
// records to the error policy (dead-letter topic by default) and never
// drops them silently.
//
// # Concurrency
//
// Every Serde must be safe for concurrent use by several tasks.
package serde
