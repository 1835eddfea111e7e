package nexmark

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/changelog"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
)

// Record is one input record of Run.
type Record struct {
	Key, Value []byte
	Timestamp  int64 // epoch ms; the Kafka timestamp
}

// Input is the content of one source topic, per partition.
type Input struct {
	Topic      string
	Partitions [][]Record
}

// RunConfig configures Run. The zero value uses the engine's defaults.
type RunConfig struct {
	// AppID names internal topics and stores. Default "nexmark".
	AppID string
	// CommitInterval is the time between checkpoints. Default 100ms
	// (the engine's default).
	CommitInterval time.Duration
	// MaxPollRecords bounds the records of one batch (between two
	// Task.Advance calls). Default 10000 (the engine's default).
	MaxPollRecords int
	// FetchRecords is how many records of one partition a batch takes
	// at a time (a fetch). Default 1000.
	FetchRecords int
	// StateDir, when set, keeps state in a Badger database there, with
	// the engine's checkpoint work (changelog records encoded, Apply);
	// otherwise stores are in memory (state.MemStore), which measures the
	// operators alone.
	StateDir string
	// StateMemory is the state memory budget. Default 256 MiB.
	StateMemory int64
	// Now is the processing-time clock. Default time.Now.
	Now func() time.Time
	// DrainTimers, when positive, moves processing time forward by this
	// much once the input is drained, so processing-time timers fire.
	DrainTimers time.Duration
	// SkipErrors counts bad records and goes on (the engine's "skip"
	// policy) instead of failing (the default).
	SkipErrors bool
	// Output, when set, is called with every record written to a topic
	// that is not internal (sinks, late data).
	Output func(*kgo.Record)
	// Logger. Default: discard.
	Logger *slog.Logger
}

// RunStats counts what Run did.
type RunStats struct {
	Input         int64            // records read from the source topics
	Output        map[string]int64 // records written per output topic
	Repartitioned int64            // records through repartition topics
	Controls      int64            // watermark control records
	Changelog     int64            // changelog records encoded
	Checkpoints   int
	Errors        int64 // bad records skipped (SkipErrors)
}

// queue is one partition of a topic, in memory.
type queue struct {
	topic     string
	partition int32
	task      *runTask
	ext       []Record      // external input
	recs      []*kgo.Record // repartition topic
	pos       int
	caughtUp  bool
}

func (q *queue) len() int {
	if q.ext != nil {
		return len(q.ext)
	}
	return len(q.recs)
}

type runTask struct {
	id    topology.TaskID
	rt    *topology.Task
	st    *state.Task
	count int // tasks of its sub-topology
	pos   map[string]int64
}

// Run runs every task of t over inputs on the calling goroutine, as the
// engine's loop would with all partitions assigned to one process, until
// the input is drained and no record moves any more. Cancelling ctx stops
// it at a batch boundary with ctx's error.
func Run(ctx context.Context, t *topology.Topology, inputs []Input, cfg RunConfig) (RunStats, error) {
	if cfg.AppID == "" {
		cfg.AppID = "nexmark"
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = 100 * time.Millisecond
	}
	if cfg.MaxPollRecords <= 0 {
		cfg.MaxPollRecords = 10000
	}
	if cfg.FetchRecords <= 0 {
		cfg.FetchRecords = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	stats := RunStats{Output: make(map[string]int64)}
	plan, err := t.Build(cfg.AppID)
	if err != nil {
		return stats, err
	}

	// Layout, as the engine's setupTopics derives it.
	ext := make(map[string][][]Record)
	for _, in := range inputs {
		ext[in.Topic] = in.Partitions
	}
	parts := make(map[string]int32)
	for _, st := range plan.Subtopologies {
		for _, s := range st.Sources {
			if s.Internal {
				continue
			}
			p, ok := ext[s.Topic]
			if !ok || len(p) == 0 {
				return stats, fmt.Errorf("nexmark: run: no input for source topic %q", s.Topic)
			}
			parts[s.Topic] = int32(len(p))
		}
	}
	tasks, err := plan.TaskCounts(func(topic string) int32 { return parts[topic] })
	if err != nil {
		return stats, fmt.Errorf("nexmark: run: %w", err)
	}
	for _, st := range plan.Subtopologies {
		for _, s := range st.Sinks {
			if _, ok := parts[s.Topic]; s.Internal || !ok {
				parts[s.Topic] = tasks[st.ID]
			}
		}
	}
	parts[topology.LateTopic(cfg.AppID)] = 1
	parts[cfg.AppID+"-dlq"] = 1

	var db *state.DB
	if cfg.StateDir != "" && len(plan.Stores()) > 0 {
		scfg := state.DefaultConfig()
		scfg.Dir, scfg.Logger = cfg.StateDir, cfg.Logger
		if cfg.StateMemory > 0 {
			scfg.MemoryBudget = cfg.StateMemory
		}
		if db, err = state.Open(scfg); err != nil {
			return stats, err
		}
		defer db.Close()
	}

	internal := make(map[string][]*queue)
	var queues []*queue
	var all []*runTask
	produce := func(rec *kgo.Record) error {
		if qs, ok := internal[rec.Topic]; ok {
			q := qs[rec.Partition]
			rec.Offset = int64(len(q.recs))
			q.recs = append(q.recs, rec)
			q.caughtUp = false
			stats.Repartitioned++
			return nil
		}
		stats.Output[rec.Topic]++
		if cfg.Output != nil {
			cfg.Output(rec)
		}
		return nil
	}
	for _, st := range plan.Subtopologies {
		for _, s := range st.Sinks {
			if s.Internal {
				internal[s.Topic] = make([]*queue, parts[s.Topic])
			}
		}
	}
	for _, st := range plan.Subtopologies {
		for p := range tasks[st.ID] {
			id := topology.TaskID{Subtopology: st.ID, Partition: p}
			rt := &runTask{id: id, count: int(tasks[st.ID]), pos: make(map[string]int64)}
			if len(st.Stores) > 0 {
				if db != nil {
					rt.st = db.Task(id.String())
				}
			}
			mem := make(map[string]*state.MemStore)
			env := topology.TaskEnv{
				AppID:   cfg.AppID,
				Task:    id,
				Produce: produce,
				Partitions: func(topic string) (int32, error) {
					n, ok := parts[topic]
					if !ok {
						return 0, fmt.Errorf("unknown topic %q", topic)
					}
					return n, nil
				},
				Store: func(name string) (state.Store, error) {
					if rt.st != nil {
						return rt.st.Store(name), nil
					}
					s, ok := mem[name]
					if !ok {
						s = state.NewMemStore()
						mem[name] = s
					}
					return s, nil
				},
				Now:    cfg.Now,
				Logger: cfg.Logger,
			}
			if rt.rt, err = st.NewTask(env); err != nil {
				return stats, err
			}
			all = append(all, rt)
			for _, s := range st.Sources {
				q := &queue{topic: s.Topic, partition: p, task: rt}
				if s.Internal {
					internal[s.Topic][p] = q
				} else if int(p) < len(ext[s.Topic]) {
					q.ext = ext[s.Topic][p]
					if q.ext == nil {
						q.ext = []Record{}
					}
				}
				queues = append(queues, q)
			}
		}
	}

	var (
		batch  []kgo.Record // reused: tasks do not keep input records past the next one
		cpID   uint64
		lastCP = cfg.Now()
		force  bool
	)
	process := func(rt *runTask, rec *kgo.Record) error {
		err := rt.rt.Process(rec)
		if err == nil {
			return nil
		}
		var se *topology.SourceError
		var oe *topology.OperatorError
		if cfg.SkipErrors && (errors.As(err, &se) || errors.As(err, &oe)) {
			stats.Errors++
			return nil
		}
		return fmt.Errorf("nexmark: run: task %s: record %s/%d@%d: %w", rt.id, rec.Topic, rec.Partition, rec.Offset, err)
	}
	advance := func(now time.Time) error {
		for _, rt := range all {
			if _, err := rt.rt.Advance(now); err != nil {
				return fmt.Errorf("nexmark: run: task %s: advance: %w", rt.id, err)
			}
		}
		return nil
	}
	checkpoint := func() (controls int64, err error) {
		stats.Checkpoints++
		cpID++
		for _, rt := range all {
			if rt.st == nil {
				continue
			}
			if _, err := rt.rt.SweepExpired(); err != nil { // as the engine, before the changelogs
				return 0, err
			}
			err := rt.st.ForEachDirty(func(store string, key, value []byte, deleted bool) error {
				rec := &kgo.Record{Topic: changelog.Topic(cfg.AppID, store), Partition: rt.id.Partition, Key: append([]byte(nil), key...)}
				if !deleted {
					rec.Value = changelog.EncodeValue(value)
				}
				stats.Changelog++
				return nil
			})
			if err != nil {
				return 0, err
			}
		}
		for _, rt := range all {
			c := rt.rt.Controls(rt.count)
			if c == nil {
				continue
			}
			for _, topic := range rt.rt.Repartitions() {
				for p, q := range internal[topic] {
					rec := *c
					rec.Topic, rec.Partition, rec.Offset = topic, int32(p), int64(len(q.recs))
					q.recs = append(q.recs, &rec)
					q.caughtUp = false
					controls++
				}
			}
		}
		stats.Controls += controls
		for _, rt := range all {
			if rt.st == nil {
				continue
			}
			cp := state.Checkpoint{ID: cpID, Changelogs: map[string]int64{}}
			for topic, off := range rt.pos {
				cp.Inputs = append(cp.Inputs, state.Offset{Topic: topic, Partition: rt.id.Partition, Offset: off})
			}
			for _, w := range rt.rt.Watermarks() {
				cp.Watermarks = append(cp.Watermarks, state.Watermark{Topic: w.Partition.Topic, Partition: w.Partition.Partition, Millis: w.Watermark})
			}
			if err := rt.st.Apply(cp); err != nil {
				return 0, err
			}
		}
		return controls, nil
	}

	drained := false
	for {
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		// One poll: fetches of up to FetchRecords per partition, round
		// robin, up to MaxPollRecords.
		budget, n := cfg.MaxPollRecords, 0
		for _, q := range queues {
			if budget == 0 {
				break
			}
			avail := q.len() - q.pos
			if avail == 0 {
				if !q.caughtUp {
					q.task.rt.SetCaughtUp(q.topic, true)
					q.caughtUp = true
				}
				continue
			}
			take := min(avail, cfg.FetchRecords, budget)
			if q.ext != nil {
				if cap(batch) < take {
					batch = make([]kgo.Record, take)
				}
				for i, r := range q.ext[q.pos : q.pos+take] {
					batch[i] = kgo.Record{Topic: q.topic, Partition: q.partition, Offset: int64(q.pos + i),
						Key: r.Key, Value: r.Value, Timestamp: time.UnixMilli(r.Timestamp)}
					if err := process(q.task, &batch[i]); err != nil {
						return stats, err
					}
				}
				stats.Input += int64(take)
			} else {
				for i := q.pos; i < q.pos+take; i++ {
					if err := process(q.task, q.recs[i]); err != nil {
						return stats, err
					}
					q.recs[i] = nil
				}
			}
			q.pos += take
			if q.recs != nil && q.pos == len(q.recs) {
				q.recs, q.pos = q.recs[:0], 0 // consumed: reuse the slice
			}
			q.task.pos[q.topic] = int64(q.pos)
			budget -= take
			n += take
			if q.task.st != nil && q.task.st.Full() {
				force = true
			}
		}
		now := cfg.Now()
		if drained {
			now = now.Add(cfg.DrainTimers)
		}
		if err := advance(now); err != nil {
			return stats, err
		}
		idle := n == 0
		if force || idle || now.Sub(lastCP) >= cfg.CommitInterval {
			controls, err := checkpoint()
			if err != nil {
				return stats, err
			}
			force, lastCP = false, now
			if idle && controls == 0 && pending(queues) == 0 {
				if drained || cfg.DrainTimers <= 0 {
					return stats, nil
				}
				drained = true
			}
		}
	}
}

func pending(qs []*queue) int {
	n := 0
	for _, q := range qs {
		n += q.len() - q.pos
	}
	return n
}
