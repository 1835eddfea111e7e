// Package topologytest runs a topology in memory, with no broker, for
// tests: weir's own semantic tests and users' tests of their topologies.
// Unlike Kafka Streams' TopologyTestDriver it runs several partitions,
// every sub-topology and the repartition topics between them, with the
// engine's watermarks, checkpoints, error policy and restarts.
//
// # Use
//
//	d, err := topologytest.New(top, topologytest.Partitions(4))
//	in := topologytest.NewInput(d, "clicks", serde.String(), serde.JSON[Click]())
//	in.Pipe(0, "k", Click{User: "u1", TS: ts}, ts) // partition 0, processed at once
//	d.Checkpoint()                                  // watermarks cross repartition topics
//	got, err := topologytest.OutputOf(d, "clicks-per-window", serde.String(), serde.JSON[Result]())
//
// # What it simulates
//
// New builds the topology with an application id (AppID, default "test")
// and creates every task the engine would run across all its processes:
// one per partition of each sub-topology. Source topics have Partitions
// partitions (or TopicPartitions); repartition topics as many as their
// writer has tasks; output topics as many as their writer has tasks unless
// set; "<app>-late" and "<app>-dlq" one.
//
// Records are processed in batches, like the engine's polls. Pipe appends
// a record to one partition of a source topic and runs; Append only
// appends, so several records form one batch. A batch hands every task
// the records pending on its partitions, then moves every task's
// watermark (Task.Advance), which closes windows and fires event-time
// timers; it repeats while records are pending (records written to a
// repartition topic are read by the downstream tasks in the next batch).
//
// Event time comes from the records: the topology's timestamp extractors
// and watermark strategies compute each partition's watermark; a task's
// is the minimum over its partitions, as in the engine. A partition whose
// records are all processed is caught up; it turns idle after IdleTimeout
// of processing time (default 30s, as in the engine).
//
// Processing time is a clock that moves only with AdvanceTime (from
// StartTime, default DefaultStartTime); AdvanceTime runs a batch boundary,
// so processing-time timers fire and idleness is noticed.
//
// Checkpoint is the engine's checkpoint: each task's watermark control
// record goes to every partition of the repartition topics it feeds,
// dirty state goes to the changelog topics ("<app>-<store>-changelog",
// the engine's record format) and becomes committed, input positions and
// outputs are committed. It repeats until no control record changes, so
// downstream windows close before it returns. Watermarks cross repartition
// topics only there, as in the engine: a windowed result after a key
// change appears after a Checkpoint.
//
// Crash aborts what the last checkpoint did not commit (outputs,
// repartition records, state) and restarts every task from its committed
// positions, on its local state (KeepLocalState) or on state rebuilt from
// its changelogs (RestoreFromChangelog). Rebalance checkpoints and
// restarts some tasks the same way, as when they move to another process.
// Stateful tasks restarted on local state start from the watermarks of
// their checkpoint, as in the engine.
//
// A record that cannot be decoded, or whose user function fails, goes to
// the error policy (OnError): by default to "<app>-dlq" with the engine's
// headers (HeaderError, HeaderSourceTopic, HeaderSourcePartition,
// HeaderSourceOffset), built by topology.DeadLetter as in the engine, so
// a huge record's dead letter is cut to fit (HeaderTruncated) here too.
// BadRecords lists them (whole) whatever the policy.
//
// # Reading results
//
// Output returns a topic's records in write order (all partitions);
// OutputOf decodes them. Late and DLQ read the side outputs. Store
// returns a task's view of a state store (wrap it in the state package's
// typed handles), Lookup finds a key in whichever task has it. Watermark
// and Watermarks show each task's watermark and its partitions' status
// (watermark, caught up, idle).
//
// # Concurrency
//
// A Driver is used from one goroutine; user functions run on it,
// synchronously, inside the driver's calls.
package topologytest
