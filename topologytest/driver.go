package topologytest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/changelog"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// Header names on dead-letter records; the same as the engine's (see
// topology.DeadLetter, which builds the dead letters of both).
const (
	HeaderError           = topology.HeaderError
	HeaderSourceTopic     = topology.HeaderSourceTopic
	HeaderSourcePartition = topology.HeaderSourcePartition
	HeaderSourceOffset    = topology.HeaderSourceOffset
	HeaderTruncated       = topology.HeaderTruncated
)

// DLQTopic is the dead-letter topic of an application, as in the engine.
func DLQTopic(appID string) string { return topology.DLQTopic(appID) }

// maxRounds bounds the batches of one Run (and the checkpoints of one
// Checkpoint): a topology whose records feed themselves forever is a bug
// the driver reports instead of hanging.
const maxRounds = 10000

// ErrNoQuiescence is returned when processing does not come to rest.
var ErrNoQuiescence = errors.New("topologytest: processing does not come to rest (a cycle through repartition topics?)")

// StateMode says what happens to a task's local state when it restarts.
type StateMode int

const (
	// KeepLocalState restarts a task on its committed local state, like
	// a process restarted on the same state directory.
	KeepLocalState StateMode = iota
	// RestoreFromChangelog drops the local state (and its checkpoint
	// record) and rebuilds it from the changelog topics, like a task
	// that moved to a process with no state of it.
	RestoreFromChangelog
)

func (m StateMode) String() string {
	if m == RestoreFromChangelog {
		return "restore-from-changelog"
	}
	return "keep-local-state"
}

// Driver runs a topology in memory. See the package documentation. A
// Driver is not safe for concurrent use.
type Driver struct {
	plan     *topology.Plan
	cfg      cfg
	now      time.Time
	seq      int64
	topics   map[string]*topic
	tasks    []*task // sorted by id
	byID     map[topology.TaskID]*task
	subTasks []int32 // sub-topology id -> task count
	bad      []BadRecord
	part     kgo.Partitioner
}

// topic is an in-memory topic: per partition, every record not aborted,
// and how many of them are committed (survive a Crash).
type topic struct {
	name      string
	parts     [][]Record
	committed []int
	source    bool // read by the topology from outside (Pipe writes it)
}

type task struct {
	id           topology.TaskID
	sub          *topology.Subtopology
	rt           *topology.Task
	sources      []string         // topics the task reads, sorted
	pos          map[string]int64 // next offset per source topic
	committedPos map[string]int64 // pos as of the last checkpoint
	stores       map[string]*memStore
	// checkpoint is the watermark part of the task's checkpoint record
	// (kept with local state, as in Badger); nil if there is none.
	checkpoint []windows.PartitionStatus
}

// BadRecord is a record the error policy handled.
type BadRecord struct {
	Record Record
	Err    error
}

// New builds the topology (with the configured application id) and its
// tasks: one per partition of each sub-topology, as the engine would run
// across all its processes.
func New(t *topology.Topology, opts ...Opt) (*Driver, error) {
	c := defaultCfg()
	for _, o := range opts {
		o.apply(&c)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	plan, err := t.Build(c.appID)
	if err != nil {
		return nil, err
	}
	d := &Driver{
		plan:     plan,
		cfg:      c,
		now:      c.start,
		topics:   make(map[string]*topic),
		byID:     make(map[topology.TaskID]*task),
		subTasks: make([]int32, len(plan.Subtopologies)),
		part:     kgo.StickyKeyPartitioner(nil),
	}
	if err := d.layout(); err != nil {
		return nil, err
	}
	for _, st := range plan.Subtopologies {
		for p := range d.subTasks[st.ID] {
			tk := &task{
				id:           topology.TaskID{Subtopology: st.ID, Partition: p},
				sub:          st,
				pos:          make(map[string]int64),
				committedPos: make(map[string]int64),
				stores:       make(map[string]*memStore),
			}
			for _, s := range st.Sources {
				tk.sources = append(tk.sources, s.Topic)
			}
			sort.Strings(tk.sources)
			for _, name := range st.Stores {
				tk.stores[name] = newMemStore(tk.id.String(), name)
			}
			if err := d.build(tk); err != nil {
				return nil, err
			}
			d.tasks = append(d.tasks, tk)
			d.byID[tk.id] = tk
		}
	}
	return d, nil
}

// layout derives partition and task counts like the engine's setupTopics:
// a sub-topology has as many tasks as its largest source has partitions, a
// repartition topic as many partitions as its writer has tasks.
func (d *Driver) layout() error {
	parts := make(map[string]int32)
	for _, st := range d.plan.Subtopologies {
		for _, s := range st.Sources {
			if !s.Internal {
				parts[s.Topic] = d.partitionsOf(s.Topic)
			}
		}
	}
	tasks, err := d.plan.TaskCounts(func(topic string) int32 { return parts[topic] })
	if err != nil {
		return fmt.Errorf("topologytest: %w", err)
	}
	copy(d.subTasks, tasks)
	for _, st := range d.plan.Subtopologies {
		for _, s := range st.Sinks {
			if s.Internal {
				parts[s.Topic] = tasks[st.ID]
			}
		}
	}
	for _, st := range d.plan.Subtopologies {
		n := d.subTasks[st.ID]
		for _, s := range st.Sources {
			d.addTopic(s.Topic, parts[s.Topic], !s.Internal)
		}
		for _, s := range st.Sinks {
			switch {
			case s.Internal:
				d.addTopic(s.Topic, n, false)
			case d.topics[s.Topic] == nil:
				p, ok := d.cfg.topicPartitions[s.Topic]
				if !ok {
					p = n
				}
				d.addTopic(s.Topic, p, false)
			}
		}
		for _, store := range st.Stores {
			d.addTopic(changelog.Topic(d.plan.AppID, store), n, false)
		}
	}
	d.addTopic(DLQTopic(d.plan.AppID), 1, false)
	d.addTopic(topology.LateTopic(d.plan.AppID), 1, false)
	return nil
}

func (d *Driver) partitionsOf(topic string) int32 {
	if n, ok := d.cfg.topicPartitions[topic]; ok {
		return n
	}
	return d.cfg.partitions
}

func (d *Driver) addTopic(name string, n int32, source bool) {
	if t, ok := d.topics[name]; ok {
		t.source = t.source || source
		return
	}
	d.topics[name] = &topic{name: name, parts: make([][]Record, n), committed: make([]int, n), source: source}
}

// build creates the task's runtime over its stores, seeded with the
// watermarks of its checkpoint record like the engine does.
func (d *Driver) build(tk *task) error {
	rt, err := tk.sub.NewTask(topology.TaskEnv{
		AppID:   d.plan.AppID,
		Task:    tk.id,
		Produce: d.produce,
		Partitions: func(topic string) (int32, error) {
			t, ok := d.topics[topic]
			if !ok {
				return 0, fmt.Errorf("unknown topic %q", topic)
			}
			return int32(len(t.parts)), nil
		},
		Store: func(name string) (state.Store, error) {
			s, ok := tk.stores[name]
			if !ok {
				return nil, fmt.Errorf("no state for store %q", name)
			}
			return s, nil
		},
		Now:        func() time.Time { return d.now },
		Logger:     d.cfg.logger.With("task", tk.id.String()),
		Watermarks: []windows.TrackerOpt{windows.IdleTimeout(d.cfg.idleTimeout), windows.AdvanceWhenIdle(d.cfg.advanceWhenIdle)},
	})
	if err != nil {
		return fmt.Errorf("topologytest: task %s: %w", tk.id, err)
	}
	if len(tk.stores) > 0 {
		for _, w := range tk.checkpoint {
			rt.SeedWatermark(w.Partition.Topic, w.Partition.Partition, w.Watermark)
		}
	}
	tk.rt = rt
	return nil
}

// Plan returns the built topology.
func (d *Driver) Plan() *topology.Plan { return d.plan }

// Now returns the processing-time clock.
func (d *Driver) Now() time.Time { return d.now }

// Tasks returns the task ids, sorted.
func (d *Driver) Tasks() []topology.TaskID {
	ids := make([]topology.TaskID, len(d.tasks))
	for i, t := range d.tasks {
		ids[i] = t.id
	}
	return ids
}

// Partitions returns the partition count of a topic the application reads
// or writes (0 for an unknown topic).
func (d *Driver) Partitions(topic string) int32 {
	if t, ok := d.topics[topic]; ok {
		return int32(len(t.parts))
	}
	return 0
}

// PartitionFor returns the partition Kafka's default partitioner (murmur2,
// as in Java producers and weir's sinks) picks for key in topic.
func (d *Driver) PartitionFor(topic string, key []byte) (int32, error) {
	n := d.Partitions(topic)
	if n == 0 {
		return 0, fmt.Errorf("topologytest: unknown topic %q", topic)
	}
	return int32(d.part.ForTopic(topic).Partition(&kgo.Record{Key: key}, int(n))), nil
}

// Pipe appends a record to a partition of a source topic and processes
// everything pending (Run). ts is the Kafka timestamp in epoch ms.
func (d *Driver) Pipe(topic string, partition int32, key, value []byte, ts int64, headers ...kgo.RecordHeader) error {
	if err := d.Append(topic, partition, key, value, ts, headers...); err != nil {
		return err
	}
	return d.Run()
}

// Append appends a record to a partition of a source topic without
// processing it: records appended before the next Run (or Pipe,
// Checkpoint, AdvanceTime) are processed as one batch, so the watermark
// moves only after all of them, as when the engine polls them together.
func (d *Driver) Append(topic string, partition int32, key, value []byte, ts int64, headers ...kgo.RecordHeader) error {
	t, ok := d.topics[topic]
	if !ok || !t.source {
		return fmt.Errorf("topologytest: the topology does not read topic %q", topic)
	}
	if partition < 0 || int(partition) >= len(t.parts) {
		return fmt.Errorf("topologytest: topic %q has %d partitions, not %d", topic, len(t.parts), partition)
	}
	d.append(Record{Topic: topic, Partition: partition, Key: bytes.Clone(key), Value: bytes.Clone(value), Timestamp: ts, Headers: slices.Clone(headers)})
	t.committed[partition] = len(t.parts[partition]) // written by an outside producer
	return nil
}

func (d *Driver) append(r Record) {
	t := d.topics[r.Topic]
	r.Offset = int64(len(t.parts[r.Partition]))
	d.seq++
	r.seq = d.seq
	t.parts[r.Partition] = append(t.parts[r.Partition], r)
}

// produce is the tasks' TaskEnv.Produce.
func (d *Driver) produce(rec *kgo.Record) error {
	t, ok := d.topics[rec.Topic]
	if !ok {
		return fmt.Errorf("topologytest: produce to unknown topic %q", rec.Topic)
	}
	if rec.Partition < 0 || int(rec.Partition) >= len(t.parts) {
		return fmt.Errorf("topologytest: produce to %s[%d]: the topic has %d partitions", rec.Topic, rec.Partition, len(t.parts))
	}
	ts := d.now.UnixMilli() // a producer stamps records without a timestamp
	if !rec.Timestamp.IsZero() {
		ts = rec.Timestamp.UnixMilli()
	}
	d.append(Record{Topic: rec.Topic, Partition: rec.Partition, Key: bytes.Clone(rec.Key), Value: bytes.Clone(rec.Value), Timestamp: ts, Headers: slices.Clone(rec.Headers)})
	return nil
}

// Run processes every pending record, batch by batch, until none is left:
// each batch hands every task the records pending on its partitions
// (source and repartition topics), then moves every task's watermark
// (Task.Advance), which fires due windows and timers. Watermarks cross
// repartition topics only at checkpoints (Checkpoint), as in the engine.
func (d *Driver) Run() error {
	for range maxRounds {
		progressed := false
		for _, tk := range d.tasks {
			for _, src := range tk.sources {
				log := d.topics[src].parts[tk.id.Partition]
				end := int64(len(log))
				if tk.pos[src] >= end {
					continue
				}
				progressed = true
				for off := tk.pos[src]; off < end; off++ {
					if err := d.process(tk, log[off].kgo()); err != nil {
						return err
					}
					tk.pos[src] = off + 1
				}
			}
		}
		for _, tk := range d.tasks {
			for _, src := range tk.sources {
				tk.rt.SetCaughtUp(src, tk.pos[src] >= int64(len(d.topics[src].parts[tk.id.Partition])))
			}
		}
		if err := d.advance(); err != nil {
			return err
		}
		if !progressed {
			return nil
		}
	}
	return ErrNoQuiescence
}

func (d *Driver) process(tk *task, rec *kgo.Record) error {
	err := tk.rt.Process(rec)
	if err == nil {
		return nil
	}
	return d.policy(tk, rec, err)
}

// advance moves every task's watermark at the current processing time.
func (d *Driver) advance() error {
	for _, tk := range d.tasks {
		if _, err := tk.rt.Advance(d.now); err != nil {
			for _, f := range tk.rt.Failures(err) {
				if f.Record == nil {
					return fmt.Errorf("topologytest: task %s: advance watermark: %w", tk.id, f.Err)
				}
				if err := d.policy(tk, f.Record, f.Err); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// policy applies the error policy like the engine: decode and user
// function errors are the record's; anything else is returned.
func (d *Driver) policy(tk *task, rec *kgo.Record, err error) error {
	var se *topology.SourceError
	var oe *topology.OperatorError
	if !errors.As(err, &se) && !errors.As(err, &oe) {
		return err
	}
	d.bad = append(d.bad, BadRecord{Record: recordOf(rec), Err: err})
	switch d.cfg.onError {
	case OnErrorFail:
		return fmt.Errorf("topologytest: task %s: record %s/%d@%d: %w", tk.id, rec.Topic, rec.Partition, rec.Offset, err)
	case OnErrorSkip:
		return nil
	}
	return d.produce(topology.DeadLetter(d.plan.AppID, rec, err))
}

// AdvanceTime moves the processing-time clock forward by dt and runs a
// batch boundary: processing-time timers fire, quiet partitions may turn
// idle (IdleTimeout) and watermarks move. It does not checkpoint.
func (d *Driver) AdvanceTime(dt time.Duration) error {
	if dt < 0 {
		return fmt.Errorf("topologytest: AdvanceTime(%v): the clock does not go back", dt)
	}
	d.now = d.now.Add(dt)
	return d.Run()
}

// Checkpoint takes the engine's checkpoint until nothing changes: run
// what is pending, write each task's watermark control record to the
// repartition topics it feeds, sweep expired TTL values
// (topology.Task.SweepExpired), commit (state to the changelogs and the
// committed state, input positions, outputs), and again while control
// records were written, so that downstream tasks see them, close their
// windows and pass their own watermarks on. Everything processed is
// committed when it returns.
func (d *Driver) Checkpoint() error {
	for range maxRounds {
		if err := d.Run(); err != nil {
			return err
		}
		wrote := false
		for _, tk := range d.tasks {
			c := tk.rt.Controls(int(d.subTasks[tk.id.Subtopology]))
			if c == nil {
				continue
			}
			for _, name := range tk.rt.Repartitions() {
				for p := range d.topics[name].parts {
					rec := *c
					rec.Topic, rec.Partition = name, int32(p)
					if err := d.produce(&rec); err != nil {
						return err
					}
					wrote = true
				}
			}
		}
		for _, tk := range d.tasks {
			if _, err := tk.rt.SweepExpired(); err != nil { // tombstones in this commit
				return fmt.Errorf("topologytest: %w", err)
			}
		}
		d.commit()
		if !wrote {
			return nil
		}
	}
	return ErrNoQuiescence
}

// commit is the commit point: changelog records of the dirty state, state
// applied, positions and watermarks recorded, outputs committed.
func (d *Driver) commit() {
	for _, tk := range d.tasks {
		names := make([]string, 0, len(tk.stores))
		for name := range tk.stores {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			s := tk.stores[name]
			for _, k := range s.dirtyEntries() {
				r := Record{Topic: changelog.Topic(d.plan.AppID, name), Partition: tk.id.Partition, Key: []byte(k), Timestamp: d.now.UnixMilli()}
				if dv := s.dirty[k]; !dv.del {
					r.Value = changelog.EncodeValue(dv.v)
				}
				d.append(r)
			}
			s.commit()
		}
		tk.committedPos = maps.Clone(tk.pos)
		if len(tk.stores) > 0 {
			tk.checkpoint = tk.rt.Watermarks()
		}
	}
	for _, t := range d.topics {
		for p := range t.parts {
			t.committed[p] = len(t.parts[p])
		}
	}
}

// Crash simulates every process of the application dying and starting
// again: what was not committed by a checkpoint is aborted (its outputs,
// repartition records and state writes vanish, as for a read_committed
// reader), every task restarts from its committed input positions on its
// committed local state (KeepLocalState) or on state restored from its
// changelogs (RestoreFromChangelog), and the records since the last
// checkpoint are processed again.
func (d *Driver) Crash(mode StateMode) error {
	for _, t := range d.topics {
		for p := range t.parts {
			t.parts[p] = t.parts[p][:t.committed[p]]
		}
	}
	for _, tk := range d.tasks {
		for _, s := range tk.stores {
			s.discard()
		}
		tk.pos = maps.Clone(tk.committedPos)
		if err := d.restart(tk, mode); err != nil {
			return err
		}
	}
	return d.Run()
}

// Rebalance simulates the tasks moving to another process (all tasks when
// ids is empty): a checkpoint commits what was processed, then each task
// restarts, on its local state (KeepLocalState: it moved back to a
// process that kept it) or on state restored from its changelogs
// (RestoreFromChangelog: a process that never had it).
func (d *Driver) Rebalance(mode StateMode, ids ...topology.TaskID) error {
	if err := d.Checkpoint(); err != nil {
		return err
	}
	if len(ids) == 0 {
		ids = d.Tasks()
	}
	for _, id := range ids {
		tk, ok := d.byID[id]
		if !ok {
			return fmt.Errorf("topologytest: no task %s", id)
		}
		if err := d.restart(tk, mode); err != nil {
			return err
		}
	}
	return d.Run()
}

// restart rebuilds a task's runtime, first rebuilding its state from the
// changelogs with RestoreFromChangelog.
func (d *Driver) restart(tk *task, mode StateMode) error {
	if mode == RestoreFromChangelog {
		tk.checkpoint = nil // it lived with the local state
		for name, s := range tk.stores {
			clear(s.committed)
			for _, r := range d.topics[changelog.Topic(d.plan.AppID, name)].parts[tk.id.Partition] {
				v, deleted, err := changelog.DecodeValue(r.Value)
				if err != nil {
					return fmt.Errorf("topologytest: task %s: restore %s: %w", tk.id, name, err)
				}
				if deleted {
					delete(s.committed, string(r.Key))
				} else {
					s.committed[string(r.Key)] = bytes.Clone(v)
				}
			}
		}
	}
	return d.build(tk)
}

// Output returns every record written to topic and not aborted, in the
// order they were written (across partitions). Repartition topics hold
// watermark control records too (Record.Control).
func (d *Driver) Output(topic string) []Record {
	t, ok := d.topics[topic]
	if !ok {
		return nil
	}
	var out []Record
	for _, p := range t.parts {
		out = append(out, p...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	for i := range out {
		out[i] = out[i].clone()
	}
	return out
}

// Late returns the late-data side output ("<app>-late").
func (d *Driver) Late() []Record { return d.Output(topology.LateTopic(d.plan.AppID)) }

// DLQ returns the dead-letter topic ("<app>-dlq").
func (d *Driver) DLQ() []Record { return d.Output(DLQTopic(d.plan.AppID)) }

// BadRecords returns every record the error policy handled, whatever the
// policy.
func (d *Driver) BadRecords() []BadRecord { return slices.Clone(d.bad) }

// Watermark returns a task's watermark as of the last batch boundary
// (windows.Unknown before it knows one).
func (d *Driver) Watermark(id topology.TaskID) int64 {
	if tk, ok := d.byID[id]; ok {
		return tk.rt.Watermark()
	}
	return windows.Unknown
}

// Watermarks returns the status of a task's input partitions: watermark,
// caught up, idle, repartition.
func (d *Driver) Watermarks(id topology.TaskID) []windows.PartitionStatus {
	if tk, ok := d.byID[id]; ok {
		return tk.rt.Watermarks()
	}
	return nil
}

// Store returns a task's view of a state store (uncommitted writes over
// committed state), for reading; wrap it in the state package's typed
// handles to read what a Process function wrote through them.
func (d *Driver) Store(id topology.TaskID, name string) (state.Store, error) {
	tk, ok := d.byID[id]
	if !ok {
		return nil, fmt.Errorf("topologytest: no task %s", id)
	}
	s, ok := tk.stores[name]
	if !ok {
		return nil, fmt.Errorf("topologytest: task %s has no store %q (it has %v)", id, name, tk.sub.Stores)
	}
	return s, nil
}

// Lookup returns the value of key in a store, from whichever task holds
// it, or an error wrapping state.ErrNotFound.
func (d *Driver) Lookup(store string, key []byte) ([]byte, error) {
	found := false
	for _, tk := range d.tasks {
		s, ok := tk.stores[store]
		if !ok {
			continue
		}
		found = true
		if v, err := s.Get(key); err == nil {
			return bytes.Clone(v), nil
		}
	}
	if !found {
		return nil, fmt.Errorf("topologytest: no store %q", store)
	}
	return nil, fmt.Errorf("topologytest: store %q, key %q: %w", store, key, state.ErrNotFound)
}

// StoreLen returns the number of keys of a store over all tasks.
func (d *Driver) StoreLen(store string) int {
	n := 0
	for _, tk := range d.tasks {
		if s, ok := tk.stores[store]; ok {
			n += s.len()
		}
	}
	return n
}
