// Package engine runs a topology as one member of its application's
// consumer group: it joins the group, turns assigned partitions into tasks,
// feeds them records, takes checkpoints, and serves /healthz, /readyz,
// /metrics and a JSON API.
//
// # Lifecycle
//
//	e, err := engine.New(t, cfg) // validates cfg and the topology
//	err = e.Run(ctx)             // until ctx is cancelled (graceful) or a fatal error
//
// Run creates the internal topics (repartition, changelog, "<app>-dlq",
// "<app>-late") and missing output topics with kadm, opens the process's
// Badger state when the topology has stores, joins the group with the
// cooperative-sticky balancer, and runs the processing loop. Cancelling ctx
// stops at a batch boundary, commits what was processed, leaves the group
// and returns nil.
//
// # The processing loop and the checkpoint
//
// One goroutine polls a batch, runs it through the tasks (operators fused,
// no hand-off), moves every task's watermark (firing windows and timers),
// and when the commit interval has passed, or a task's write cache is
// full, takes a checkpoint — the one commit point:
//
//  1. every task's dirty state goes to its changelog partitions, and
//     watermark control records to the repartition topics it feeds;
//  2. the producer is flushed (every output acknowledged);
//  3. the consumed offsets are committed;
//  4. only then the dirty state is applied to Badger together with the
//     task's checkpoint record (changelog offsets, input offsets,
//     watermarks).
//
// A task that starts replays its changelogs from the offsets in its
// checkpoint record (everything, with no local state), so a process
// restarted on its state directory replays only the tail. Backpressure:
// producing blocks when MaxBufferedRecords are unacknowledged, which stops
// the loop and so the fetching.
//
// # Bad records
//
// A record that cannot be decoded, or whose user function fails, is handled
// by Config.OnError: produced to "<app>-dlq" with headers weir.error,
// weir.source.topic, weir.source.partition and weir.source.offset (dlq, the
// default), counted and logged (skip), or stops the engine (fail). A
// record read from a repartition topic also carries weir.origin, the input
// record it came from (topology.HeaderOrigin). What fails while windows
// close and timers fire (Task.Advance) is set aside as itself, a window
// result or a timer (topology.EmitError: weir.source.topic "" and
// weir.source.offset -1), never as an unrelated input record.
//
// # Goroutines
//
// Run owns every goroutine it starts (errgroup) and returns after they
// exit: the processing loop, the HTTP server, and with StandbyReplicas the
// standby tailer. franz-go calls the rebalance callbacks on its own
// goroutine; with BlockRebalanceOnPoll they never run while the loop
// processes a batch, so the tasks belong to "whoever holds the turn" and
// need no lock. The HTTP server reads only snapshots (Tasks) and committed
// state (Badger is safe for concurrent reads).
package engine
