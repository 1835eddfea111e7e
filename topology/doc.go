// Package topology is weir's typed Go DSL: the operator graph a user
// writes, its split into sub-topologies, and the per-task runtime that the
// engine drives.
//
// # Writing a topology
//
//	t := topology.New()
//	clicks := topology.Source(t, "clicks", serde.Bytes(), serde.JSON[Click](),
//		topology.WithTimestamps(func(_ []byte, c Click, _ int64) (int64, error) { return c.TS, nil }),
//		topology.WithWatermarks(windows.BoundedOutOfOrderness(2*time.Second)))
//	byUser := topology.SelectKey(clicks, func(_ []byte, c Click) (string, error) { return c.User, nil },
//		serde.String(), topology.Named("by-user"))
//	tumbling := windows.Checked(windows.Tumbling(10 * time.Second)) // a bad size is a Build error
//	counts := topology.Aggregate(byUser, windows.Spec{Assigner: tumbling},
//		windows.Count[Click](), serde.Int64(), topology.Named("count"))
//	...
//	topology.To(topology.WithSerdes(out, serde.String(), serde.JSON[Result]()), "clicks-per-window")
//
// Operators: Source, Map, MapValues, Filter, FlatMap, Peek, Merge, Branch,
// SelectKey, Repartition, Process (keyed, with state stores), ProcessTimed
// (with event- and processing-time timers), Count, Aggregate (tumbling,
// hopping, session and count windows from package windows), Combine (a
// combiner: pre-aggregates per key and window slice before a repartition)
// and To. Go has no generic methods, so operators are functions taking a
// Stream.
//
// # Names, sub-topologies and internal topics
//
// Every operator has a name: the one given with Named, or one derived from
// its kind and position ("map-3"). State stores, changelog topics
// ("<app>-<store>-changelog") and repartition topics
// ("<app>-<operator>-repartition") are named after operators, and a
// derived name changes when an operator is added before it, which would
// start the operator on empty state without a word. So an operator whose
// name reaches Kafka must be Named, or Build fails naming it: Count,
// Aggregate, ProcessTimed, Repartition, Process with Stores or after a key
// change. Stateless operators (Combine too: it holds nothing past a batch)
// may keep derived names.
//
// Options are checked: Named applies to every operator, WithTimestamps and
// WithWatermarks to Source only, Stores and the Queryable options to
// Process and ProcessTimed only (the operators that open stores). An
// option given to any other operator has no effect and is a Build error
// naming the operator and the option, so a store listed on a Filter gets
// no changelog and a watermark strategy on a Map is not silently ignored.
//
// A keyed operation (Process, Count, Aggregate) after a key change (Map,
// FlatMap, SelectKey, Process) first writes the stream through a
// repartition topic, partitioned by the new key; that cut splits the graph
// into sub-topologies. Build binds a Topology to an application id,
// validates it (reporting every problem at once) and returns the Plan;
// Plan.String, DOT and JSON describe it.
//
// A store is readable through the engine's interactive queries when its
// operator declares how it is written: Queryable (values put with
// Store.Put), QueryableValue, QueryableList or QueryableMap (the state
// handles; QueryTTL when the handle has a TTL). Count's and Aggregate's
// stores are queryable already (Aggregate's answers a key's windows).
//
// # Runtime
//
// A Task is one sub-topology for one partition number. Its operators are
// fused: each calls the next directly, on the goroutine that owns the task,
// with no queue in between. The engine feeds it Kafka records
// (Task.Process), moves its watermark at batch boundaries (Task.Advance,
// which also fires due windows and timers, then empties every Combine, so
// that nothing is held in memory at a checkpoint) and collects the
// watermark control records it owes downstream (Task.Controls) and,
// before each checkpoint, sweeps expired TTL values (Task.SweepExpired). Control
// records are consumed by repartition sources and never reach user
// functions.
//
// # State with a TTL
//
// The task's *Context is the Clock of state handles with a TTL:
//
//	seen := state.NewValue(st, serde.Int64(), state.WithTTL(state.EventTimeTTL(time.Hour), ctx))
//
// Context.Timestamp is the event time a write counts from (the record's in
// Process, the timer's in an event-time OnTimer, none in a processing-time
// one), Context.Watermark the time expiry is judged against. Opening such
// a handle schedules its store for sweeping: Task.SweepExpired, which the
// engine and the test driver call at every checkpoint barrier, deletes up
// to SweepLimit entries' worth of expired values per store (tombstones in
// that checkpoint's changelog).
//
// Sinks place keyed records with Kafka's murmur2, as Java producers do;
// records without a key go to one partition for StickyBytes (16 KiB),
// then to the next, like Java's uniform sticky partitioner, so that the
// producer fills batches.
//
// # Errors
//
// DSL calls never fail; Build reports what they collected (errors wrap
// ErrInvalid). At run time a record that cannot be decoded yields a
// *SourceError and a user function's error an *OperatorError naming the
// operator; the engine's error policy decides what happens to the record.
// A store write the store cannot hold (a *state.SizeError: a key or value
// too large) surfaces the same way, as the error of the operator that
// wrote it; so does a record too large for the producer
// (MaxOutputBytes), as the error of the sink or repartition that would
// write it. DeadLetter builds the dead letter of a bad record, cut to fit
// the broker, for the engine and the test driver alike.
// Task.Advance runs every operator's advance even when one fails; its
// error is a record's (for the policy) only if every error in it is one.
// A window result, a timer's record or a combined record that fails on
// its way downstream is an *EmitError carrying that record, so the policy
// sets it aside instead of an unrelated input record; Task.Failures splits
// an Advance error into the records to set aside.
//
// # Where a record came from
//
// Context.Topic, Partition and Offset name the record being processed;
// outside one (a timer, a window's emission, a factory) they return "",
// -1 and -1. A repartition sink appends the header HeaderOrigin naming
// the input record a record came from, kept across further repartitions;
// the repartition source takes it off, so operators and outputs never see
// it, but dead letters (the records as read) carry it. Every late record
// names its input record in HeaderOriginTopic, HeaderOriginPartition and
// HeaderOriginOffset.
//
// # Concurrency
//
// A Topology is built on one goroutine. A Plan is immutable and shared. A
// Task, its Context, Timers and stores are used only on the goroutine that
// owns the task; user functions are called there, synchronously.
package topology
