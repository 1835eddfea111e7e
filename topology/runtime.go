package topology

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/windows"
)

// TaskEnv is what the engine gives a task: where its records go, where its
// state lives, and what time it is. Every function is called only from the
// task's goroutine.
type TaskEnv struct {
	AppID string
	Task  TaskID
	// Produce sends a record whose Topic and Partition are set. It may
	// block while the producer's buffer is full (backpressure).
	Produce func(*kgo.Record) error
	// Partitions returns the partition count of a topic the task writes.
	Partitions func(topic string) (int32, error)
	// Store returns the task's view of a state store of its
	// sub-topology.
	Store func(name string) (state.Store, error)
	// Now returns processing time. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Watermarks configures the task's watermark tracker (idle timeout,
	// advance when idle).
	Watermarks []windows.TrackerOpt
	// OnLate is told of every record sent to the late-data output.
	OnLate func(operator string)
}

// Context is the per-task view operators and user functions get: the
// record being processed, the task's stores, event and processing time.
// It is valid only on the task's goroutine.
type Context struct {
	env TaskEnv
	// src is the record being processed, nil outside Task.Process
	// (timers, window emission, factories).
	src *kgo.Record
	// origin is the value of the HeaderOrigin header src carried as a
	// repartition record, nil if it carried none.
	origin    []byte
	watermark int64
	now       time.Time // processing time of the current batch
	tracker   *windows.Tracker
	stores    map[string]struct{}
	ts        int64      // event time of the record (or timer) being processed; Unknown if none
	sweeps    []ttlSweep // stores of TTL handles, swept at checkpoints (ttl.go)
}

// AppID returns the application id.
func (c *Context) AppID() string { return c.env.AppID }

// TaskID returns the task's id.
func (c *Context) TaskID() TaskID { return c.env.Task }

// Topic returns the topic the record being processed was read from, or ""
// outside a record: in a timer, a window's emission or a factory. (After a
// repartition it is the repartition topic; the input record's is in the
// record's HeaderOrigin header.)
func (c *Context) Topic() string {
	if c.src == nil {
		return ""
	}
	return c.src.Topic
}

// Partition returns the partition the record being processed was read
// from, or -1 outside a record.
func (c *Context) Partition() int32 {
	if c.src == nil {
		return -1
	}
	return c.src.Partition
}

// Offset returns the offset of the record being processed, or -1 outside
// a record.
func (c *Context) Offset() int64 {
	if c.src == nil {
		return -1
	}
	return c.src.Offset
}

// Watermark returns the task's current event-time watermark (epoch ms).
func (c *Context) Watermark() int64 { return c.watermark }

// ProcessingTime returns the wall clock as the engine sees it.
func (c *Context) ProcessingTime() time.Time { return c.env.Now() }

// Logger returns the task's logger.
func (c *Context) Logger() *slog.Logger { return c.env.Logger }

// Store returns the named state store. Only stores declared in this
// sub-topology (with Stores) are available.
func (c *Context) Store(name string) (state.Store, error) {
	if _, ok := c.stores[name]; !ok {
		return nil, fmt.Errorf("topology: task %s: store %q is not declared in this sub-topology: add Stores(%q) to its operator", c.env.Task, name, name)
	}
	return c.env.Store(name)
}

// Task is one sub-topology's operators built for one partition. Its
// methods are called only from the engine goroutine that owns the task.
type Task struct {
	ID        TaskID
	ctx       *Context
	last      *kgo.Record // the record processed last, nil before the first
	sources   map[string]sourceFn
	advancers []func(wm int64) error
	// flushers empty the Combines, upstream ones first, after the
	// advancers (which may feed them).
	flushers []func() error
	// repartition lists the repartition topics the task writes, with
	// the last control record sent to them.
	repartition []string
	lastControl windows.ControlRecord
	sentAt      time.Time // zero: nothing sent yet
	seeded      bool      // watermarks were seeded since the last Process
}

// controlResend is how often an unchanged control record is sent again, so
// that a restarted downstream task hears from every upstream task soon.
const controlResend = time.Second

// NewTask builds the sub-topology's operators for one task. Factories of
// Process operators run now, on the caller's goroutine.
func (s *Subtopology) NewTask(env TaskEnv) (*Task, error) {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	strategy := windows.Monotonous()
	for _, n := range s.nodes {
		if n.watermarks != nil {
			strategy = *n.watermarks
			break
		}
	}
	tracker, err := windows.NewTracker(strategy, env.Watermarks...)
	if err != nil {
		return nil, fmt.Errorf("topology: task %s: %w", env.Task, err)
	}
	ctx := &Context{env: env, stores: make(map[string]struct{}), watermark: windows.Unknown, ts: windows.Unknown, tracker: tracker, now: env.Now()}
	for _, st := range s.Stores {
		ctx.stores[st] = struct{}{}
	}
	tb := &taskBuilder{plan: s.plan, sub: s, ctx: ctx, tracker: tracker, built: make(map[*node]any), sinks: make(map[string]*sink)}
	t := &Task{ID: env.Task, ctx: ctx, sources: make(map[string]sourceFn)}
	for _, n := range s.nodes {
		switch n.kind {
		case KindSource, KindRepartitionSrc:
			b, err := tb.build(n)
			if err != nil {
				return nil, err
			}
			t.sources[s.plan.topicName(n)] = b.(sourceFn)
		case KindRepartitionSink:
			t.repartition = append(t.repartition, s.plan.topicName(n))
		}
	}
	if tb.err != nil {
		return nil, tb.err
	}
	t.advancers = tb.advancers
	t.flushers = tb.flushers
	slices.Reverse(t.flushers) // children are built, and so registered, before their parents
	return t, nil
}

// Advance sets the task's processing time and moves its watermark: when
// the tracker's watermark passed the task's, every windowed operator emits
// the windows it closed, timers fire, and then every Combine emits what it
// holds (also what windows and timers sent it), so none holds anything at a
// checkpoint. The engine calls it at every batch boundary and before every
// checkpoint. It returns the task watermark, and the errors of its
// operators joined: an error of one does not keep the others from running.
func (t *Task) Advance(now time.Time) (int64, error) {
	t.ctx.now = now
	if wm := t.ctx.tracker.Current(now); wm > t.ctx.watermark {
		t.ctx.watermark = wm
	}
	var errs []error
	for _, adv := range t.advancers {
		if err := adv(t.ctx.watermark); err != nil {
			errs = append(errs, err)
		}
	}
	for _, flush := range t.flushers {
		if err := flush(); err != nil {
			errs = append(errs, err)
		}
	}
	var fatal []error
	for _, err := range errs {
		fatal = appendFatal(fatal, err)
	}
	if len(fatal) > 0 { // not for the error policy: it must not pass for a record's
		return t.ctx.watermark, errors.Join(fatal...)
	}
	return t.ctx.watermark, errors.Join(errs...)
}

// appendFatal appends err, or the errors joined in it, that are neither a
// *SourceError nor an *OperatorError (a bad record's, for the error
// policy).
func appendFatal(dst []error, err error) []error {
	for _, e := range leaves(nil, err) {
		if !isRecordError(e) {
			dst = append(dst, e)
		}
	}
	return dst
}

// LastRecord returns the record processed last, nil if the task has
// processed none since it was built.
func (t *Task) LastRecord() *kgo.Record { return t.last }

// Failure is a bad record's error from Advance, with the record the error
// policy sets aside for it.
type Failure struct {
	// Record is the record to set aside; nil when there is none (then
	// the error is fatal).
	Record *kgo.Record
	Err    error
}

// Failures splits an error Advance returned into what the error policy
// handles: one Failure per *EmitError (a window result, a timer or a
// combined record, set aside as its own Record), and, as a fallback, one
// for any other record errors joined (weir's operators return none),
// set aside as the record processed last. An error that is not a
// record's (Advance returns only those when there is one) comes back
// with a nil Record, and so does a fallback when the task processed no
// record. Called on the task's goroutine.
func (t *Task) Failures(err error) []Failure {
	var fs []Failure
	var rest []error
	for _, e := range leaves(nil, err) {
		var ee *EmitError
		switch {
		case errors.As(e, &ee):
			fs = append(fs, Failure{Record: ee.Record, Err: e})
		case isRecordError(e):
			rest = append(rest, e)
		default:
			fs = append(fs, Failure{Err: e})
		}
	}
	if len(rest) > 0 {
		fs = append(fs, Failure{Record: t.last, Err: errors.Join(rest...)})
	}
	return fs
}

// leaves appends the errors joined in err (recursively), or err itself.
func leaves(dst []error, err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			dst = leaves(dst, e)
		}
		return dst
	}
	return append(dst, err)
}

// isRecordError reports whether err is a bad record's (a *SourceError or
// an *OperatorError), for the error policy.
func isRecordError(err error) bool {
	var se *SourceError
	var oe *OperatorError
	return errors.As(err, &se) || errors.As(err, &oe)
}

// Watermark returns the task watermark as of the last Advance.
func (t *Task) Watermark() int64 { return t.ctx.watermark }

// SetCaughtUp tells the watermark tracker whether the task has consumed
// topic's partition up to its end (a condition of idleness).
func (t *Task) SetCaughtUp(topic string, caughtUp bool) {
	t.ctx.tracker.SetCaughtUp(windows.PartitionKey{Topic: topic, Partition: t.ID.Partition}, caughtUp, t.ctx.now)
}

// SeedWatermark starts an input partition's watermark at wm, the value a
// checkpoint recorded, so that a restarted task does not wait for every
// partition to show data (or go idle) before its windows close again.
func (t *Task) SeedWatermark(topic string, partition int32, wm int64) {
	t.ctx.tracker.Seed(windows.PartitionKey{Topic: topic, Partition: partition}, wm)
	t.seeded = true
}

// SeedUpstreamWatermark starts what upstream task said a repartition
// partition's watermark is at wm, the value a checkpoint recorded, so that
// a restarted task does not wait for every upstream task to announce a
// watermark again (one with quiet input would announce none).
func (t *Task) SeedUpstreamWatermark(topic string, partition int32, upstream string, wm int64) {
	t.ctx.tracker.SeedUpstream(windows.PartitionKey{Topic: topic, Partition: partition}, upstream, wm)
	t.seeded = true
}

// Watermarks returns the per-partition watermark status, for the API.
func (t *Task) Watermarks() []windows.PartitionStatus { return t.ctx.tracker.Partitions(t.ctx.now) }

// Controls returns the watermark control record the task should write now
// to every partition of each topic in Repartitions, or nil when it sent the
// same one less than a second ago (downstream keeps the last one it saw).
// taskCount is the number of tasks of the task's sub-topology.
func (t *Task) Controls(taskCount int) *kgo.Record {
	if len(t.repartition) == 0 {
		return nil
	}
	c := t.ctx.tracker.Control(t.ID.String(), taskCount, t.ctx.now)
	if !t.sentAt.IsZero() && c == t.lastControl && t.ctx.now.Sub(t.sentAt) < controlResend {
		return nil
	}
	t.lastControl, t.sentAt = c, t.ctx.now
	return &kgo.Record{Value: windows.EncodeControl(c), Headers: []kgo.RecordHeader{{Key: windows.HeaderKey}}}
}

// Repartitions returns the repartition topics the task writes.
func (t *Task) Repartitions() []string { return t.repartition }

// Process pushes one Kafka record through the task's operators. A non-nil
// error is a *SourceError (the record could not be decoded), an
// *OperatorError (a user function or serde failed), or an error from the
// engine's Produce; the engine applies its error policy to the first two.
func (t *Task) Process(rec *kgo.Record) error {
	fn, ok := t.sources[rec.Topic]
	if !ok {
		return fmt.Errorf("topology: task %s does not read topic %q", t.ID, rec.Topic)
	}
	if t.seeded {
		// The first batch after a restart is judged (TTL expiry) against
		// the watermark the seeds make, not an unknown one; the first
		// Advance computes the same or a later one.
		t.seeded = false
		if wm := t.ctx.tracker.Current(t.ctx.now); wm > t.ctx.watermark {
			t.ctx.watermark = wm
		}
	}
	t.ctx.src, t.ctx.origin, t.last = rec, nil, rec
	err := fn(t.ctx, rec)
	t.ctx.src, t.ctx.origin = nil, nil
	return err
}

// Topics returns the topics the task reads.
func (t *Task) Topics() []string {
	ts := make([]string, 0, len(t.sources))
	for topic := range t.sources {
		ts = append(ts, topic)
	}
	return ts
}

// taskBuilder builds one task's runtime, each node once (a Merge node has
// several parents but one runtime).
type taskBuilder struct {
	plan      *Plan
	sub       *Subtopology
	ctx       *Context
	tracker   *windows.Tracker
	built     map[*node]any
	sinks     map[string]*sink
	advancers []func(wm int64) error
	flushers  []func() error
	err       error
}

func (tb *taskBuilder) build(n *node) (any, error) {
	if b, ok := tb.built[n]; ok {
		return b, nil
	}
	if tb.plan.subOf[n] != tb.sub {
		return nil, fmt.Errorf("topology: internal: operator %q is not in sub-topology %d", n.name, tb.sub.ID)
	}
	b, err := n.build(tb)
	if err != nil {
		return nil, err
	}
	tb.built[n] = b
	return b, nil
}

// sink is a task's writer to one topic.
type sink struct {
	topic      string
	partitions int32
	part       kgo.TopicPartitioner
	next       int32 // partition of records without a key (sticky)
	nextBytes  int   // bytes written without a key to next
	env        *TaskEnv
}

// StickyBytes is how many bytes of records without a key a sink writes to
// one partition before it moves to the next. Java's producer does the same
// (the uniform sticky partitioner of KIP-794 moves on after batch.size,
// 16 KiB by default): records spread evenly over the partitions, yet the
// producer fills whole batches instead of one record per partition each.
const StickyBytes = 16 << 10

func (tb *taskBuilder) sink(topic string) *sink {
	if s, ok := tb.sinks[topic]; ok {
		return s
	}
	n, err := tb.ctx.env.Partitions(topic)
	if err == nil && n <= 0 {
		err = fmt.Errorf("%d partitions", n)
	}
	if err != nil {
		if tb.err == nil {
			tb.err = fmt.Errorf("topology: task %s: sink %q: %w", tb.ctx.env.Task, topic, err)
		}
		n = 1
	}
	s := &sink{
		topic:      topic,
		partitions: n,
		part:       kgo.StickyKeyPartitioner(nil).ForTopic(topic),
		next:       tb.ctx.env.Task.Partition % n,
		env:        &tb.ctx.env,
	}
	tb.sinks[topic] = s
	return s
}

// send encodes r and produces it. Keyed records go to the partition Kafka's
// default partitioner (murmur2) picks, so weir and Java producers agree;
// records with a nil key go to one partition for StickyBytes, then to the
// next.
func send[K, V any](ctx *Context, s *sink, ks serde.Serde[K], vs serde.Serde[V], r Record[K, V], op string) error {
	kb, err := ks.Encode(r.Key)
	if err != nil {
		return &OperatorError{Operator: op, Err: fmt.Errorf("encode key: %w", err)}
	}
	vb, err := vs.Encode(r.Value)
	if err != nil {
		return &OperatorError{Operator: op, Err: fmt.Errorf("encode value: %w", err)}
	}
	rec := &kgo.Record{Topic: s.topic, Key: kb, Value: vb, Timestamp: time.UnixMilli(r.Timestamp), Headers: r.Headers}
	if n := recordBytes(rec); n > MaxOutputBytes {
		return &OperatorError{Operator: op, Err: fmt.Errorf("record of %d bytes for %s exceeds the limit of %d bytes (MaxOutputBytes)", n, s.topic, MaxOutputBytes)}
	}
	if kb == nil {
		rec.Partition = s.next
		if s.nextBytes += len(vb); s.nextBytes >= StickyBytes {
			s.next, s.nextBytes = (s.next+1)%s.partitions, 0
		}
	} else {
		rec.Partition = int32(s.part.Partition(rec, int(s.partitions)))
	}
	return s.env.Produce(rec)
}
