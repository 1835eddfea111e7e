package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/changelog"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
)

// openState opens the process's Badger database when the topology has
// stores; a stateless topology needs no state directory.
func (e *Engine) openState() error {
	if len(e.plan.Stores()) == 0 {
		return nil
	}
	cfg := state.DefaultConfig()
	cfg.Dir = e.cfg.StateDir
	cfg.MemoryBudget = e.cfg.StateMemory
	cfg.Logger = e.log
	db, err := state.Open(cfg)
	if err != nil {
		return fmt.Errorf("engine: state: %w (each process needs its own --state-dir)", err)
	}
	e.db = db
	ids, err := db.TaskIDs()
	if err != nil {
		return fmt.Errorf("engine: state: %w", err)
	}
	now := time.Now()
	for _, id := range ids {
		e.released[id] = now
	}
	return nil
}

// restore brings a task's local state up to its changelogs: it replays
// each store's changelog from the offset in the task's checkpoint record
// (the whole changelog when there is none), writing straight to Badger.
// A process restarted on the same state directory so replays only what
// was written after its last applied checkpoint.
func (e *Engine) restore(ctx context.Context, t *task, st *topology.Subtopology) error {
	cp, _, err := t.st.Checkpoint()
	if err != nil {
		return err
	}
	if cp.Changelogs == nil {
		cp.Changelogs = make(map[string]int64)
	}
	for _, store := range st.Stores {
		topic := changelog.Topic(e.cfg.AppID, store)
		from := cp.Changelogs[store]
		entries := make([]state.Entry, 0, 1024)
		stats, err := changelog.ReadRange(ctx, e.clientOpts(), topic, t.id.Partition, from, func(recs []changelog.Record) error {
			entries = entries[:0]
			for _, r := range recs {
				if !e.restorable(t.st, topic, t.id.Partition, r.Offset, store, r.Key, r.Value) {
					continue
				}
				entries = append(entries, state.Entry{Store: store, Key: r.Key, Value: r.Value, Deleted: r.Deleted})
			}
			cp.Changelogs[store] = recs[len(recs)-1].Offset + 1
			return t.st.Restore(entries, cp)
		})
		if err != nil {
			return fmt.Errorf("restore %s from %s[%d]@%d: %w", store, topic, t.id.Partition, from, err)
		}
		if stats.End < stats.From && e.changelogEnd(ctx, topic, t.id.Partition) < stats.From {
			// State is applied only after its changelog records are
			// committed, so local state cannot be ahead of Kafka unless
			// the changelog was deleted or truncated behind our back. (A
			// last stable offset below our checkpoint only means another
			// producer's transaction is still open there: nothing to
			// replay yet; compare with the high watermark.)
			return fmt.Errorf("local state of task %s is ahead of its changelog %s[%d] (checkpoint at offset %d, changelog ends at %d): the changelog was deleted or truncated; remove the state directory %q to restore from Kafka", t.id, topic, t.id.Partition, stats.From, stats.End, e.cfg.StateDir)
		}
		e.m.restored.WithLabelValues(store).Add(float64(stats.Records))
		e.log.Info("restored", "task", t.id, "store", store, "from", stats.From, "end", stats.End,
			"records", stats.Records, "duration", stats.Duration.Round(time.Millisecond))
	}
	t.changelogs = cp.Changelogs
	return nil
}

// restorable reports whether a changelog record fits its store. One that
// does not (only an older version, which did not check sizes at Put,
// could have written it) is skipped, logged at error level and counted:
// failing would kill every process that takes the task over, forever.
// The skipped entry's key holds its value as of the changelog record
// before, if any.
func (e *Engine) restorable(st *state.Task, topic string, partition int32, offset int64, store string, key, value []byte) bool {
	err := st.Fits(store, key, value)
	if err == nil {
		return true
	}
	e.m.restoreSkipped.WithLabelValues(store).Inc()
	e.log.Error("skipping a changelog record the store cannot hold", "task", st.ID(), "topic", topic, "partition", partition, "offset", offset,
		"key_bytes", len(key), "value_bytes", len(value), "err", err)
	return false
}

// produceChangelogs writes every task's dirty state to its changelog
// partitions and remembers the last record of each store, whose offset
// (known once the producer is flushed) goes into the checkpoint record.
func (e *Engine) produceChangelogs() error {
	for _, t := range e.tasks {
		if t.st == nil {
			continue
		}
		err := t.st.ForEachDirty(func(store string, key, value []byte, deleted bool) error {
			rec := &kgo.Record{Topic: changelog.Topic(e.cfg.AppID, store), Partition: t.id.Partition, Key: append([]byte(nil), key...)}
			if !deleted {
				rec.Value = changelog.EncodeValue(value)
			}
			t.lastChangelog[store] = rec
			return e.produce(rec)
		})
		if err != nil {
			return fmt.Errorf("engine: task %s: changelog: %w", t.id, err)
		}
	}
	return nil
}

// sweepExpired deletes, in each task, a bounded number of expired values
// of its TTL handles' stores (topology.Task.SweepExpired), at the barrier,
// so that produceChangelogs writes their tombstones into this checkpoint.
func (e *Engine) sweepExpired() error {
	for _, t := range e.tasks {
		if _, err := t.rt.SweepExpired(); err != nil {
			return fmt.Errorf("engine: %w", err)
		}
	}
	return nil
}

// applyState writes each task's dirty state to Badger with its checkpoint
// record, after the checkpoint's outputs and offsets are committed.
func (e *Engine) applyState(id uint64) error {
	e.m.perCP.Observe(float64(e.sinceCP))
	e.sinceCP = 0
	wms := make(map[string]int64, len(e.tasks))
	defer func() {
		e.snapMu.Lock()
		e.committedWM = wms
		e.snapMu.Unlock()
	}()
	for _, t := range e.tasks {
		t.watermarks = make([]state.Watermark, 0, len(t.watermarks)) // the last one may be held by the state's checkpoint
		for _, w := range t.rt.Watermarks() {
			t.watermarks = append(t.watermarks, state.Watermark{Topic: w.Partition.Topic, Partition: w.Partition.Partition, Millis: w.Watermark})
			for _, up := range slices.Sorted(maps.Keys(w.Upstream)) { // in order: equal checkpoints encode equally
				t.watermarks = append(t.watermarks, state.Watermark{Topic: w.Partition.Topic, Partition: w.Partition.Partition, Upstream: up, Millis: w.Upstream[up]})
			}
		}
		if t.st == nil {
			continue
		}
		for store, rec := range t.lastChangelog {
			t.changelogs[store] = rec.Offset + 1
			delete(t.lastChangelog, store)
		}
		cp := state.Checkpoint{ID: id, Changelogs: t.changelogs}
		for topic, off := range t.pos {
			cp.Inputs = append(cp.Inputs, state.Offset{Topic: topic, Partition: t.id.Partition, Offset: off.Offset})
		}
		cp.Watermarks = t.watermarks
		if err := t.st.Apply(cp); err != nil {
			return fmt.Errorf("engine: task %s: apply state: %w", t.id, err)
		}
		wms[t.id.String()] = t.shownWM
	}
	return nil
}

// dropStale deletes the local state of tasks this process has not owned
// for StateCleanupDelay. Kept state makes a task's return cheap (only the
// changelog tail is replayed); stale state only costs disk.
func (e *Engine) dropStale(now time.Time) {
	for id, since := range e.released {
		if now.Sub(since) < e.cfg.StateCleanupDelay || e.sb.Holds(id) {
			continue
		}
		if err := e.db.DropTask(id); err != nil {
			e.log.Warn("dropping stale task state", "task", id, "err", err)
			continue
		}
		delete(e.released, id)
		e.log.Info("dropped stale task state", "task", id, "unowned_for", now.Sub(since).Round(time.Second))
	}
}

// clientOpts are the options every client of the engine shares.
func (e *Engine) clientOpts() []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(e.cfg.Brokers...), kgo.WithLogger(kgoLogger{e.log})}, e.cfg.ClientOpts...)
}

// changelogEnd returns a changelog partition's high watermark, or the
// largest offset when it cannot be read (so that no false alarm is raised).
func (e *Engine) changelogEnd(ctx context.Context, topic string, p int32) int64 {
	ends, err := e.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 1<<63 - 1
	}
	o, ok := ends.Lookup(topic, p)
	if !ok || o.Err != nil {
		return 1<<63 - 1
	}
	return o.Offset
}
