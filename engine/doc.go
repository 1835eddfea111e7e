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
// Run first compares the plan's state (stores, their changelog topics,
// repartition topics) with what the application ran last, recorded in the
// compacted topic "<app>-plan" (PlanTopic). A plan that drops some of it
// (usually a renamed operator) is refused with ErrStateOrphaned, listing
// that state, unless Config.AllowStateLoss; nothing is created or
// recorded then. Adding state is fine. Run then creates the internal
// topics (repartition, changelog, "<app>-dlq", "<app>-late") and missing
// output topics with kadm, records the plan if its state changed, opens
// the process's
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
//  1. every task sweeps a bounded number of expired TTL values
//     (topology.Task.SweepExpired), then its dirty state (with those
//     deletes) goes to its changelog partitions, and watermark control
//     records to the repartition topics it feeds;
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
// weir.source.offset -1), never as an unrelated input record. A dead
// letter always fits the broker: topology.DeadLetter cuts a huge key,
// value, header set or error text and says so (weir.truncated, the
// original sizes and SHA-256s). A store write of a key or value the store
// cannot hold (state.SizeError) fails the record that made it, before it
// reaches a changelog; a changelog record over those limits (written by an
// older version) is skipped on restore, logged at error level and counted
// (weir_restore_skipped_total).
//
// Under exactly-once a checkpoint commits only if every record of its
// transaction was acknowledged. A record whose processing produces
// something the broker rejects every time (an output larger than the
// topic's max.message.bytes) would abort its checkpoint forever; after 3
// such aborts in a row the engine narrows transactions down to the record
// (isolation) and handles it by the same policy: its dead letter's
// weir.error is the produce error (without the record's key, value and
// headers if the full dead letter is rejected too; skipped with an error
// logged if even that is). weir_isolated_records_total counts them.
//
// # Metrics
//
// /metrics counts data records: weir_records_in_total (consumed and
// handed to tasks) and weir_records_out_total (produced and acknowledged)
// leave out the watermark control records on repartition topics (those
// produced are in weir_control_records_out_total) and transaction
// markers. weir_consumer_lag is the partition's last stable offset (its
// end for a read_committed reader: open transactions are not readable
// yet) minus the position after the last record fetched, transaction
// markers included (the consumer keeps them for this only), so a
// caught-up partition shows 0 even when it ends with a commit marker.
//
// # Goroutines
//
// Run owns every goroutine it starts (errgroup) and returns after they
// exit: the processing loop, the HTTP server, and with StandbyReplicas the
// standby tailer. franz-go calls the rebalance callbacks on its own
// goroutine; with BlockRebalanceOnPoll they never run while the loop
// processes a batch, so the tasks belong to "whoever holds the turn" and
// need no lock. The HTTP server reads only snapshots (Tasks, each task's
// committed watermark) and committed state (Badger is safe for concurrent
// reads).
//
// # Interactive queries
//
// GET /state/{store}/{key} answers a key's value as of its task's last
// checkpoint, decoded by the store's declaration (topology.Queryable,
// QueryableValue, QueryableList, QueryableMap; Count and Aggregate stores
// are queryable already): a value, a list, a map's entries, or a window
// store's windows of the key. Expired values are absent (404). A key whose
// task another process owns is redirected there (307). GET
// /state/{store}?prefix=&from=&limit= lists a page of the live keys of the
// store in the tasks this process owns (not the others'); from is the
// previous page's next.
package engine
