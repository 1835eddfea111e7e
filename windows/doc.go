// Package windows owns event-time windowing: window assigners, watermark
// tracking (per partition, with idleness, and across repartition topics),
// the windowed aggregation operator with grace and late-data detection,
// and the headers and ids of window results. It is pure logic: no Kafka,
// no goroutines, no clocks of its own (processing time is passed in).
//
// # Concurrency
//
// Nothing in this package is safe for concurrent use. The engine owns one
// [Tracker] per task and one [Operator] per windowed operator of a task,
// and calls them only from the goroutine that runs that task, together
// with the task's state.Store. Aggregation functions and emit callbacks
// run on that goroutine, synchronously. Assigners, Specs, Strategies and
// ControlRecords are immutable values and may be shared.
//
// # Windows
//
// A [Window] is half-open, [Start, End), in epoch milliseconds of event
// time. Assigners:
//
//   - [Tumbling](size): [offset + k*size, offset + (k+1)*size).
//   - [Hopping](size, advance): windows of size starting every advance; a
//     record is in size/advance windows. size must be a multiple of
//     advance.
//   - [Session](gap): per key, records less than gap apart chain into one
//     session [first, last + gap); an (out-of-order) record within gap of
//     several sessions merges them with [Aggregation.Merge].
//   - [CountWindows](n): per key, every n records form a window. A count
//     window has no time bounds: Start and End are element ordinals (the
//     k-th window is [k*n, (k+1)*n)), so result ids never repeat. It is
//     emitted at the first Advance after its n-th record, whatever the
//     watermark, and is never late.
//
// Sizes, gaps, offsets and grace must be whole milliseconds; constructors
// and [Spec.Validate] return errors wrapping [ErrInvalidSpec]. [Checked]
// turns a constructor's two results into one assigner that holds the error,
// if any ([Assigner.Err]); topology.Aggregate and topology.Combine report it
// at Build, naming the operator, so a topology need not handle each
// constructor's error where it is written, and never drops one.
//
// # Watermarks
//
// A [Strategy] turns the maximum event time seen on a partition into its
// watermark: [BoundedOutOfOrderness](d) = max - d, [Monotonous] = max. A
// [Tracker] keeps one watermark per input partition of a task; each only
// moves forward. The engine calls, on the task goroutine:
//
//   - Add / AddRepartition / Remove on assignment changes;
//   - Observe(p, eventTime, now) for every data record, before handing it
//     to the operators;
//   - SetCaughtUp(p, caughtUp, now) when the consumer position reaches or
//     leaves the partition's high watermark;
//   - ObserveControl(p, c, now) for every control record (see below);
//   - Current(now) for the task watermark, passed to Operator.Add and
//     Operator.Advance.
//
// The task watermark is the minimum over the non-idle partitions, and it
// never goes backwards. A partition that has seen no data and is not
// caught up has watermark [Unknown] (math.MinInt64) and holds the minimum
// at Unknown: no window closes until every partition has data or is idle.
//
// Idleness: a partition that is caught up and has been quiet (no record)
// for [IdleTimeout] (default 30s, measured from the later of its last
// record and the moment it caught up) is idle and drops out of the
// minimum. A record (or SetCaughtUp(false)) makes it rejoin, with the
// watermark it had; because the task watermark never goes back, records
// on a rejoined partition older than the task watermark may be late. When
// every partition is idle the task watermark is the maximum over them; with
// [AdvanceWhenIdle] it then also advances with wall-clock time elapsed
// since they all went idle, so the last windows close.
//
// Checkpoints: the engine stores [Tracker.Partitions] watermarks in the
// task's checkpoint record. When a task starts, or after an aborted
// checkpoint (when it seeks back and replays records), it builds a new
// Tracker and calls [Tracker.Seed] with those watermarks; reusing the old
// Tracker would judge replayed records against a watermark they did not
// see the first time. Idleness depends on processing time, so a replay
// may still decide lateness differently; the transaction makes whichever
// decision is committed the only one visible.
//
// # Watermarks across repartition topics
//
// A task that writes to a repartition topic writes, at every checkpoint, a
// control record to every partition of that topic, inside the same
// transaction. It has header [HeaderKey] ("weir.control", empty value) and
// the value [EncodeControl]([Tracker.Control](taskID, taskCount, now)):
// the upstream task's own Current and Idle. Control records are never
// handed to user functions. Version-1 value layout (big-endian):
//
//	offset size field
//	0      1    version (1)
//	1      1    flags: bit 0 = idle (every input of the upstream task is idle); other bits 0
//	2      4    upstream task count (uint32, >= 1)
//	6      8    watermark (int64 epoch ms; math.MinInt64 = unknown)
//	14     2    task id length n (uint16, 1..1024)
//	16     n    upstream task id (bytes, e.g. "1_3")
//
// Later versions may only append fields (and define flag bits); a reader
// of version 1 reads the version-1 prefix of a later version and ignores
// the rest. [DecodeControl] rejects truncated input, version 0, an empty
// or over-long id, a zero task count, and (for version 1) unknown flags or
// trailing bytes.
//
// Downstream, a repartition partition's watermark is the minimum over the
// upstream tasks that feed it, of each task's latest control watermark;
// data records there do not move it. It is Unknown until every upstream
// task (the count in the control records, or AddRepartition's) has
// reported at least once. Upstream tasks that have no data still report:
// a task whose inputs are all idle sends its own watermark with the idle
// flag, and downstream leaves idle upstream tasks out of the minimum. So
// "only some upstream tasks have data" progresses as soon as the others
// have gone idle (after their IdleTimeout). If every upstream task is
// idle, the partition's watermark is the maximum over them and the
// partition itself is idle (it rejoins at its next data record). Until
// every upstream task has reported, the partition can also become idle the
// ordinary way (caught up and quiet). An upstream task that stops
// reporting without going idle holds the partition at its last watermark.
//
// # Aggregation operator
//
// [NewOperator] builds an [Operator] from a [Spec] (assigner, Grace, Emit
// mode), a state.Store it owns, an accumulator serde and an [Aggregation]
// (Init, Add, Merge; helpers [Count], [Sum], [Min], [Max], [Reduce] and
// [Collect] for process-window functions). [Operator.Add] folds a record
// into its windows; a window is closed when End + Grace <= watermark and a
// record whose windows are all closed is not added and is reported as
// [Late] for the late-data side output. [Operator.Advance] emits every
// closed window once, as final, in (End, key, Start) order, and deletes
// its state; with [EmitEarly] it also emits windows changed since the
// previous Advance with Final=false. The engine calls Advance whenever the
// watermark moves and at every checkpoint barrier. A window whose emission
// fails downstream is done all the same: Advance returns the error, naming
// the window, and goes on with the others, so one bad result never holds
// back the windows after it.
//
// Sliced hopping windows: with a [Aggregation.Commutative] aggregation
// (Count, Sum, Min, Max) and EmitFinal, a hopping-window operator keeps
// one accumulator per key and pane, the advance-long slice of event time
// [p, p+advance), adds each record to its pane only, and computes a
// window, when it closes, by merging the size/advance panes it covers (in
// start order, with Merge): a record costs one state update instead of
// size/advance (Flink calls this window slicing). Results, lateness and
// emission order are those of the unsliced operator when Add is given the
// watermark of the last Advance, as the engine does (a window closed by a
// higher watermark given to Add, and not emitted yet, would still take in
// the records of its last pane until the next Advance emits it).
//
// Results carry the headers [HeaderWindowStart], [HeaderWindowEnd]
// (decimal strings), [HeaderFinal] ("true"/"false") and [HeaderResultID]
// ([ResultID]); see [AppendHeaders].
//
// # Store layout
//
// All window state lives in the operator's state.Store, so the engine
// checkpoints, changelogs and restores it; the in-memory indexes (windows
// by end time, complete count windows) are rebuilt from the Store by
// [Operator.Restore], which NewOperator calls. Keys:
//
//	0x00 'w'                                   -> int64be highest watermark seen by Advance
//	0x01 uint32be(len(key)) key uint64be(start ^ 1<<63) -> window entry
//	0x02 uint32be(len(key)) key                -> int64be next count-window start (count windows)
//	0x03 uint32be(len(key)) key uint64be(start ^ 1<<63) -> pane entry (sliced hopping windows)
//
// so one key's windows are adjacent and in start order (the sign flip makes
// byte order numeric order). A window entry is
//
//	version(1) flags(1: bit 0 = complete count window) int64be(end) uvarint(count) accumulator
//
// where the accumulator is encoded by the operator's serde. A session is
// one entry at its start; merging deletes the merged entries. A pane entry
// has the same layout; its end is start + advance and its count field holds
// the watermark when the pane was created (uint64(wm) ^ 1<<63), which says
// which of its windows were open then. A sliced operator writes no window
// entries: its open windows are those over some pane that were open when
// the pane was created and are open at the persisted watermark (Advance
// persists the watermark, then emits every window it closes, before it
// returns). Window entries found by a sliced operator were written before
// it sliced (an upgrade): such a window's value is its entry merged with
// its panes. Emitting the window that starts at a pane deletes the pane.
// An operator that does not slice refuses a store with panes.
//
// QueryKey and QueryKeys read this layout for interactive queries without
// an Operator: a key's windows with state (a sliced operator's merged from
// their panes, as Advance would emit them) and the keys of a store.
//
// The in-memory indexes cost one entry per open window and per pane (plus,
// for sessions, a per-key list of session bounds, so Add never scans the
// Store); early-emission bookkeeping is in memory only, because the engine
// calls Advance at every checkpoint barrier and so nothing is pending in
// checkpointed state.
//
// # Invariants
//
//   - Watermarks never go backwards: per partition, per task (Tracker),
//     and per operator (the operator keeps the highest watermark it was
//     given, persisted in its Store by Advance, so even after Restore a
//     smaller watermark cannot reopen an emitted window).
//   - A window's final result is emitted in the same step that deletes its
//     state, so it is emitted once per committed checkpoint history: if
//     the checkpoint aborts, the engine discards the state writes and the
//     emitted records together, and must call Operator.Restore, because
//     the in-memory indexes describe the discarded writes.
//   - Everything in memory is derived from the Store (Restore rebuilds
//     it), except EmitEarly's changed-window set, which is empty at every
//     barrier.
//   - Control records carry watermarks, never data; a repartition
//     partition's watermark depends only on them.
package windows
