// Package serde turns typed values into Kafka record bytes and back.
//
// # Serde
//
// A [Serde] is a pair of functions, Encode and Decode, for one Go type. The
// topology DSL takes a key serde and a value serde wherever records enter or
// leave Kafka (sources, sinks, repartition topics) and wherever state is
// stored. Built-ins: [Bytes], [String], [Int64] and [JSON].
//
// # Avro
//
// [Avro] and [AvroTyped] encode plain Avro binary with goavro.
// [AvroRegistry] and [AvroRegistryTyped] speak the Confluent Schema Registry
// wire format (magic byte 0, 4-byte big-endian schema id, Avro binary): the
// writer schema is registered on first use, and codecs are cached by schema
// id, so the registry is asked once per id. The client is in
// serde/registry; serde/registry/registrytest is an in-memory registry for
// tests. A record whose magic byte, schema id or body is wrong fails with a
// *DecodeError.
//
// # JSON input contracts
//
// [JSON] decodes with encoding/json and closes the gaps through which
// wrong input would pass as data: input that is not valid UTF-8 is
// refused (encoding/json would turn every bad byte into U+FFFD, merging
// distinct values), and a struct field tagged `weir:"required"` must be
// present and not null (encoding/json leaves a zero value for both):
//
//	type Click struct {
//		User string `json:"user" weir:"required"`
//		TS   int64  `json:"ts" weir:"required"`
//		Page string `json:"page"` // optional: "" when missing or null
//	}
//
// The UTF-8 check costs little next to encoding/json; required fields
// cost a second decode of the value into a struct of those fields only
// (BenchmarkJSONDecodeRequired: about twice the time of a plain decode of
// a small event). Types without the tag pay nothing for it.
//
// encoding/json already refuses a JSON type that does not fit (true into
// a string, a string into an int64). Unknown fields are ignored. Error
// messages name the field and quote at most 64 bytes of the input.
//
// # Retaining decoded bytes
//
// The bytes a source hands to Decode are a record's key or value, and weir
// never modifies or reuses them (the engine's come from franz-go fetches,
// which are not pooled; the test driver and the Nexmark runner keep inputs
// unchanged). So a source's serdes may decode without copying, returning
// values that share those bytes: the Nexmark event codec's strings do.
// Such a value keeps its record's bytes in memory while it is in use.
// Bytes read from state stores (window accumulators, state handles) live
// in caches that are reused: a serde used for state must copy what it
// keeps. [Bytes] copies either way, so the caller may modify its result.
//
// # Errors
//
// Decode failures are reported as *[DecodeError]; the engine hands such
// records to the error policy (dead-letter topic by default) and never
// drops them silently. Error texts end up in logs and dead-letter
// headers, so they never carry a record's megabytes: a DecodeError's text
// bounds its cause to MaxErrorText (1 KiB), and a serde that quotes input
// in an error quotes it through Excerpt (its first 64 bytes and length).
//
// # Concurrency
//
// Every Serde must be safe for concurrent use by several tasks.
package serde
