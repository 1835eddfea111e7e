package topology

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
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
}

// Context is the per-task view operators and user functions get: the
// record being processed, the task's stores, event and processing time.
// It is valid only on the task's goroutine.
type Context struct {
	env       TaskEnv
	src       *kgo.Record
	watermark int64
	stores    map[string]struct{}
}

// AppID returns the application id.
func (c *Context) AppID() string { return c.env.AppID }

// TaskID returns the task's id.
func (c *Context) TaskID() TaskID { return c.env.Task }

// Topic, Partition and Offset return where the record being processed was
// read from.
func (c *Context) Topic() string    { return c.src.Topic }
func (c *Context) Partition() int32 { return c.src.Partition }
func (c *Context) Offset() int64    { return c.src.Offset }

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
	ID      TaskID
	ctx     *Context
	sources map[string]sourceFn
}

// NewTask builds the sub-topology's operators for one task. Factories of
// Process operators run now, on the caller's goroutine.
func (s *Subtopology) NewTask(env TaskEnv) (*Task, error) {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	ctx := &Context{env: env, stores: make(map[string]struct{}), watermark: minWatermark}
	for _, st := range s.Stores {
		ctx.stores[st] = struct{}{}
	}
	tb := &taskBuilder{plan: s.plan, sub: s, ctx: ctx, built: make(map[*node]any), sinks: make(map[string]*sink)}
	t := &Task{ID: env.Task, ctx: ctx, sources: make(map[string]sourceFn)}
	for _, n := range s.nodes {
		if n.kind != KindSource && n.kind != KindRepartitionSrc {
			continue
		}
		b, err := tb.build(n)
		if err != nil {
			return nil, err
		}
		t.sources[s.plan.topicName(n)] = b.(sourceFn)
	}
	if tb.err != nil {
		return nil, tb.err
	}
	return t, nil
}

// minWatermark is the watermark before any event time is known.
const minWatermark = int64(-1 << 63)

// Process pushes one Kafka record through the task's operators. A non-nil
// error is a *SourceError (the record could not be decoded), an
// *OperatorError (a user function or serde failed), or an error from the
// engine's Produce; the engine applies its error policy to the first two.
func (t *Task) Process(rec *kgo.Record) error {
	fn, ok := t.sources[rec.Topic]
	if !ok {
		return fmt.Errorf("topology: task %s does not read topic %q", t.ID, rec.Topic)
	}
	t.ctx.src = rec
	return fn(t.ctx, rec)
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
	plan  *Plan
	sub   *Subtopology
	ctx   *Context
	built map[*node]any
	sinks map[string]*sink
	err   error
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
	next       int32 // round-robin cursor for records without a key
	env        *TaskEnv
}

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
// records with a nil key go round-robin.
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
	if kb == nil {
		rec.Partition = s.next
		s.next = (s.next + 1) % s.partitions
	} else {
		rec.Partition = int32(s.part.Partition(rec, int(s.partitions)))
	}
	return s.env.Produce(rec)
}
