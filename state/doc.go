// Package state holds the keyed state of weir's tasks: the Store contract,
// the process's Badger database (DB), each task's write cache and
// checkpoint record (Task), and typed handles for user code (Value, Map,
// List, Reducing, Aggregating) with optional TTL.
//
// # Who calls what
//
// The engine opens one DB per process (Open), takes a Task per task it
// runs (DB.Task), hands the task's operators its Stores (Task.Store), and
// drives the checkpoint protocol (DESIGN.md §3):
//
//  1. Barrier: Task.ForEachDirty lists the dirty writes, sorted by store
//     and key; the engine produces them to the changelog topics inside the
//     open Kafka transaction.
//  2. Commit succeeded: Task.Apply(cp) writes the dirty writes and the
//     checkpoint record cp to Badger in one write batch.
//  3. Commit failed: Task.Discard drops the dirty writes; reads see the
//     committed state again.
//  4. Task start: Task.Checkpoint says where the local state stands;
//     Task.Restore writes replayed changelog records together with an
//     advanced checkpoint record.
//  5. Task revoked for good: DB.DropTask deletes its state with one prefix
//     delete. DB.TaskIDs lists the tasks that have state on disk.
//
// Between checkpoints, Task.Full tells the engine to force an early one.
//
// Interactive queries (the engine's HTTP server) read committed state only:
// DB.CommittedView gives a read-only Store over one task's store in one
// Badger snapshot; LivePayload, ListPayload, MapPrefix and SplitMapKey
// read the handles' encoding there, LivePayload judging expiry as the
// handles do.
//
// # Concurrency
//
// DB's methods are safe for concurrent use. A Task and its Stores are not:
// only the goroutine running the task calls them. DropTask blocks every
// task's Apply and Restore while Badger drops the prefix (Badger rejects
// writes during a prefix drop). A Task stops working (ErrTaskDropped) when
// its id is dropped or a newer Task is taken for the same id, and
// everything stops (ErrClosed) after DB.Close; the engine stops its tasks
// before Close.
//
// # Write cache
//
// Each Task has a cache made of Go maps per store: dirty writes (values
// and deletes) since the last Apply or Discard, and a clean read cache of
// committed values. Reads check dirty, then clean, then Badger (copying
// the value out of Badger, ValueCopy). Scan merges the sorted dirty keys
// over a Badger prefix iterator: dirty values replace Badger's, dirty
// deletes hide them, dirty-only keys appear in order. Clean entries are
// kept while dirty plus clean stays within Config.TaskCacheBytes; beyond
// that clean entries are evicted at random. Dirty entries are never
// evicted: Full reports when they reach the limit.
//
// Sizes are estimates: key bytes (with the Badger prefix), value bytes,
// and 112 bytes per entry for Go map and slice overhead.
//
// # Atomicity
//
// Apply writes the dirty set and the checkpoint record in one Badger
// transaction, so Badger always equals the state of some applied
// checkpoint. One transaction holds at most 15% of a memtable, so Full
// also reports true at 90% of that. If the engine lets the dirty set grow
// beyond it anyway, Apply still succeeds: it commits several transactions
// in order with the checkpoint record in the last, and logs a warning. A
// crash between them leaves the previous checkpoint record with some newer
// values; those values are all in the committed changelog past that
// record's offsets, so recovery's replay (DESIGN.md §3 step 5) overwrites
// them. Restore splits large batches the same way.
//
// # Key layout
//
// Every key starts with a namespace byte. Lengths are unsigned varints
// (encoding/binary Uvarint), so no task id is a prefix of another's
// encoding ("0_1" is 01 03 "0_1", "0_10" is 01 04 "0_10"), and likewise
// store names:
//
//	00 "format"                                          on-disk format version (1 byte: 1)
//	01 len(task) task 00                                 checkpoint record
//	01 len(task) task 01 len(store) store userKey        store entry
//
// DropTask drops the prefix 01 len(task) task. The checkpoint record sorts
// first among a task's keys, which lets TaskIDs seek once per task.
//
// # Size limits
//
// A store holds a key only if its Badger key (the prefix above plus the
// user key) is at most MaxKeyBytes (65,000 bytes, Badger's limit), and a
// value only up to Config.MaxValueBytes (default 768 KiB, so that a
// changelog record carrying the largest key and value stays under the
// broker's default max message size; in memory, also Badger's value
// threshold). Put refuses anything larger with a *SizeError before it
// reaches the write cache: such an entry never reaches a changelog, and
// so never fails an Apply or a Restore. The engine treats it as a bad
// record (the user function or operator that wrote it returns the error),
// and skips, loudly, a changelog record over the limits that an older
// version wrote (Task.Fits). Deleting a key too large to store is a no-op.
//
// # Checkpoint record
//
// Checkpoint.Encode, format version 2: one version byte (2), then
//
//	uvarint ID
//	uvarint n, n × { uvarint len, topic, varint partition, varint offset }   Inputs
//	uvarint n, n × { uvarint len, store, varint offset }                    Changelogs, by store name
//	uvarint n, n × { uvarint len, topic, varint partition,
//	                 uvarint len, upstream task, varint millis }             Watermarks
//
// where varint is encoding/binary's zig-zag Varint, and the upstream task
// is empty for a partition's own watermark. Version 1 had no upstream task
// in Watermarks; DecodeCheckpoint reads both and rejects other versions, trailing bytes, counts larger than the bytes
// left, duplicate stores and partitions outside int32.
//
// # Value encoding
//
// The typed handles store every value (and every Map entry) as
//
//	00 payload                          no expiry
//	01 int64 big-endian expiry, payload  expires when now >= expiry (epoch ms)
//
// where payload is the serde's encoding; a List payload is a sequence of
// uvarint(len) element. These bytes are what the changelog carries, so a
// restored value keeps its expiry. Map entries are stored under
// uvarint(len(key)) key encoded(mapKey). Use one kind of handle per Store.
//
// # TTL
//
// WithTTL(ttl, clock) gives a handle a TTL with Flink's semantics: a value
// expires a duration after its last write (OnCreateAndWrite; with
// TTL.RefreshOnRead also after its last live read, Flink's
// OnReadAndWrite), measured in a time domain chosen explicitly, by
// building the TTL with EventTimeTTL or ProcessingTimeTTL (the zero TTL
// is ErrInvalidTTL). In a topology the clock is the task's
// *topology.Context.
//
//   - Event time: a write counts from the record's timestamp
//     (Clock.Timestamp; the watermark for a write with no record, and
//     ErrNoEventTime if that is unknown too) and keeps the later of the
//     old and the new expiry, so records out of order never shorten a
//     value's life. A value is expired once the watermark reaches
//     expiry; while the watermark is unknown (UnknownTime) nothing is.
//   - Processing time: a write counts from Clock.ProcessingTime, and a
//     value is expired once the wall clock reaches its expiry.
//
// A read of an expired value returns absent and deletes it, so the delete
// reaches the changelog as a tombstone with the next checkpoint. Values
// nobody reads are deleted by a Sweeper, which examines a bounded number
// of entries per call and resumes where it stopped: a handle opened with
// a TTL schedules its store with its clock if the clock is a
// SweepScheduler, and the task context sweeps every scheduled store at
// each checkpoint barrier (topology.Task.SweepExpired), so the tombstones
// are in that checkpoint's transaction. Use one TTL domain per store: a
// sweeper judges every entry of its store in its own domain. The value
// encoding is the same as before TTLs were measured this way: stored
// values keep their expiry.
//
// # Memory
//
// Config.MemoryBudget (default 256 MiB) sizes everything; with budget B
// (figures for the default):
//
//   - Badger memtables: B/16 each (16 MiB; between 1 and 64 MiB), at most
//     2 waiting to be flushed. Each memtable's arena is about 1.3 times its
//     size, so memtables take 1.3·B/16 (one active) to 5.2·B/16 (one
//     active, two queued, one flushing): 21 to 83 MiB.
//   - Badger block cache B/8 (32 MiB) and index cache B/16 (16 MiB); with
//     an index cache, table indexes and bloom filters are cached instead
//     of all held in memory, so they do not grow with the data.
//   - Per-task cache: Config.TaskCacheBytes, default B/32 (8 MiB), at
//     least 4 MiB. The dirty part is further bounded by one Badger
//     transaction (15% of a memtable: 2.4 MiB), see Atomicity.
//   - Compaction: 2 compactors; every table is 2 MiB at every level
//     (Badger's default doubles the table size per level, and with it the
//     buffers of its table builders, so memory grew with the data), and
//     blocks are not compressed (compression added a second buffer per
//     builder and a goroutine pool). The price is disk (10M entries of
//     16-byte keys and values: 375 MiB, against 144 MiB with Snappy) and
//     one open file per 2 MiB of state (a 10 GiB state needs ulimit -n
//     above 5000).
//
// These bound Badger's and the caches' heap; Go's collector lets the heap
// grow to twice the live heap between collections, so set GOMEMLIMIT in
// the binary (for example to the budget) to hold the peak nearer it.
// Badger's tables are memory-mapped files: the pages it writes and reads
// count towards the resident set (RssFile) but are page cache that the
// kernel (or a container's memory cgroup) reclaims under pressure.
// BENCHMARKS.md, section "State", has measured peaks.
//
// Badger's log lines go to Config.Logger: errors and warnings at their
// level, info (housekeeping) and debug at debug.
package state
