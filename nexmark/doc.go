// Package nexmark is weir's Nexmark benchmark: an event generator that
// follows the Nexmark model (persons, auctions and bids of an online
// auction), the Nexmark queries written as weir topologies, and an
// in-memory runner that drives a topology's tasks the way the engine's loop
// does, without Kafka, to measure the engine's own limit.
//
// # Events
//
// Event is one person, auction or bid, encoded as JSON:
//
//	{"event_type":2,"bid":{"auction":1007,"bidder":1001,"price":3315,"channel":"Google",
//	 "url":"https://www.nexmark.com/...","date_time":1767225600123,"extra":""}}
//
// date_time is epoch milliseconds. Codec is the Serde[Event] the queries
// read with: a hand-written encoder and decoder for this shape, which falls
// back to encoding/json for anything it does not expect (escaped strings,
// other whitespace), so any valid JSON of the shape decodes.
//
// # Generator
//
// Generator follows the published Nexmark generator (Beam's and Flink's
// GeneratorConfig): event number n is a person when n % 50 == 0, an
// auction when n % 50 is 1..3 and a bid otherwise (1:3:46); auctions and
// bids refer to recent persons and auctions with the hot-auction (2),
// hot-bidder (4) and hot-seller (4) ratios; prices are log-uniform between
// $1 and $1M (in cents); event time advances by 1/Rate seconds per event
// from BaseTime. Events are a pure function of (Seed, event number), so a
// range of events can be generated anywhere, in any order.
//
// # Queries
//
// Topology builds a query (q0, q1, q2, q5, q7, q11, q12) over an input
// topic of JSON events with the semantics of the published Nexmark SQL:
// event time is the event's date_time and the watermark trails the largest
// event time by 4 s. q3 needs stream-table joins, which weir does not have
// yet: Topology reports ErrNotSupported. Topologies returns the queries as
// named definitions for the processor CLI ("nexmark-q5").
//
// # Runner
//
// Run drives every task of a topology on the calling goroutine over
// in-memory partitions: records in batches, Task.Advance at every batch
// boundary, a checkpoint (watermark control records, changelog encoding,
// Badger Apply) every commit interval, repartition records routed in
// memory to the partition the sink chose. It is what the engine does per
// record minus the Kafka client, so its throughput is the engine's own
// ceiling.
//
// # Concurrency
//
// A Generator is not safe for concurrent use; make one per goroutine (they
// agree on every event). Codec is stateless. Run uses only the calling
// goroutine.
package nexmark
