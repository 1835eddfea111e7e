package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/changelog"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
)

// standbys keeps warm copies of tasks other processes own, so that a
// failover replays only a short changelog tail.
//
// Placement needs no custom assignor: every process reads the group
// description, orders the members by member id, and for each stateful task
// takes the StandbyReplicas members after the task's owner (cyclically) as
// its standbys. Every process computes the same placement from the same
// description; a stale description only costs a cold or a redundant copy.
//
// One goroutine (run) owns the standby tasks and their changelog consumer.
// The engine hands it work through channels only: release(id) before the
// engine makes a task active here, so that the two never write one task's
// state at once.
type standbys struct {
	e       *Engine
	release chan releaseReq
	// tasks belongs to run; held is its snapshot for other goroutines.
	tasks map[topology.TaskID]*standbyTask
	held  atomic.Pointer[map[string]bool]
}

type releaseReq struct {
	ids  []topology.TaskID
	done chan struct{}
}

type standbyTask struct {
	st *state.Task
	cp state.Checkpoint
}

const standbyRefresh = 3 * time.Second

func newStandbys(e *Engine) *standbys {
	return &standbys{e: e, release: make(chan releaseReq), tasks: make(map[topology.TaskID]*standbyTask)}
}

// Release stops keeping the tasks warm and returns once no standby write to
// their state can happen any more. Called by the engine before tasks become
// active here.
func (s *standbys) Release(ctx context.Context, ids []topology.TaskID) {
	if s == nil || len(ids) == 0 {
		return
	}
	req := releaseReq{ids: ids, done: make(chan struct{})}
	select {
	case s.release <- req:
		select {
		case <-req.done:
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
}

// run tails the changelogs of the standby tasks until ctx is cancelled.
func (s *standbys) run(ctx context.Context) error {
	cl, err := kgo.NewClient(append(s.e.clientOpts(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{}),
	)...)
	if err != nil {
		return fmt.Errorf("engine: standby client: %w", err)
	}
	defer cl.Close()
	next := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case req := <-s.release:
			for _, id := range req.ids {
				s.drop(cl, id)
			}
			close(req.done)
			continue
		default:
		}
		if time.Now().After(next) {
			if err := s.refresh(ctx, cl); err != nil && ctx.Err() == nil {
				s.e.log.Warn("standby placement", "err", err)
			}
			next = time.Now().Add(standbyRefresh)
		}
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := cl.PollFetches(pctx)
		cancel()
		if err := s.apply(cl, fetches); err != nil {
			return err
		}
	}
}

// refresh recomputes which tasks this process keeps warm and starts or
// stops tailing their changelogs.
func (s *standbys) refresh(ctx context.Context, cl *kgo.Client) error {
	want, err := s.placement(ctx)
	if err != nil {
		return err
	}
	for id := range s.tasks {
		if !want[id] {
			s.drop(cl, id)
		}
	}
	add := make(map[string]map[int32]kgo.Offset)
	for id := range want {
		if _, ok := s.tasks[id]; ok {
			continue
		}
		t := &standbyTask{st: s.e.db.Task(id.String())}
		cp, _, err := t.st.Checkpoint()
		if err != nil {
			return err
		}
		if cp.Changelogs == nil {
			cp.Changelogs = make(map[string]int64)
		}
		t.cp = cp
		s.tasks[id] = t
		for _, store := range s.e.plan.Subtopologies[id.Subtopology].Stores {
			topic := changelog.Topic(s.e.cfg.AppID, store)
			if add[topic] == nil {
				add[topic] = make(map[int32]kgo.Offset)
			}
			add[topic][id.Partition] = kgo.NewOffset().At(cp.Changelogs[store])
		}
		s.e.log.Info("standby started", "task", id)
	}
	if len(add) > 0 {
		cl.AddConsumePartitions(add)
	}
	s.publish()
	return nil
}

func (s *standbys) publish() {
	held := make(map[string]bool, len(s.tasks))
	for id := range s.tasks {
		held[id.String()] = true
	}
	s.held.Store(&held)
}

// Holds reports whether the task's local state is kept warm here (so it
// is not stale). Safe for concurrent use.
func (s *standbys) Holds(id string) bool {
	if s == nil {
		return false
	}
	h := s.held.Load()
	return h != nil && (*h)[id]
}

// placement returns the stateful tasks this member should keep warm.
func (s *standbys) placement(ctx context.Context) (map[topology.TaskID]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	groups, err := s.e.adm.DescribeGroups(ctx, s.e.cfg.AppID)
	if err != nil {
		return nil, err
	}
	self, _ := s.e.member.Load().GroupMetadata()
	if self == "" {
		return nil, nil // not joined yet
	}
	g, ok := groups[s.e.cfg.AppID]
	if !ok || g.Err != nil {
		return nil, fmt.Errorf("describe group: %v", g.Err)
	}
	members := make([]string, 0, len(g.Members))
	owner := make(map[topology.TaskID]string)
	for _, m := range g.Members {
		members = append(members, m.MemberID)
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range a.Topics {
			st := s.e.plan.SubtopologyFor(t.Topic)
			if st == nil || len(st.Stores) == 0 {
				continue
			}
			for _, p := range t.Partitions {
				owner[topology.TaskID{Subtopology: st.ID, Partition: p}] = m.MemberID
			}
		}
	}
	sort.Strings(members)
	index := make(map[string]int, len(members))
	for i, m := range members {
		index[m] = i
	}
	me, ok := index[self]
	if !ok {
		return nil, nil // not a member yet
	}
	want := make(map[topology.TaskID]bool)
	for id, o := range owner {
		if o == self {
			continue
		}
		for k := 1; k <= s.e.cfg.StandbyReplicas && k < len(members); k++ {
			if (index[o]+k)%len(members) == me {
				want[id] = true
			}
		}
	}
	return want, nil
}

// drop stops tailing a task; its local state stays for a quick start.
func (s *standbys) drop(cl *kgo.Client, id topology.TaskID) {
	if _, ok := s.tasks[id]; !ok {
		return
	}
	delete(s.tasks, id)
	s.publish()
	rm := make(map[string][]int32)
	for _, store := range s.e.plan.Subtopologies[id.Subtopology].Stores {
		topic := changelog.Topic(s.e.cfg.AppID, store)
		rm[topic] = append(rm[topic], id.Partition)
	}
	cl.RemoveConsumePartitions(rm)
	s.e.log.Info("standby stopped", "task", id)
}

// apply writes polled changelog records into the standby tasks' state,
// advancing their checkpoint records' changelog offsets with them.
func (s *standbys) apply(cl *kgo.Client, fetches kgo.Fetches) error {
	var fatal error
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if fatal != nil || len(p.Records) == 0 {
			return
		}
		store, ok := s.e.changelogStore[p.Topic]
		if !ok {
			return
		}
		st := s.e.plan.Stores()[store]
		t := s.tasks[topology.TaskID{Subtopology: st.ID, Partition: p.Partition}]
		if t == nil {
			return // dropped since the fetch
		}
		entries := make([]state.Entry, 0, len(p.Records))
		for _, r := range p.Records {
			v, deleted, err := changelog.DecodeValue(r.Value)
			if err != nil {
				fatal = fmt.Errorf("engine: standby: %s[%d]@%d: %w", p.Topic, p.Partition, r.Offset, err)
				return
			}
			if !s.e.restorable(t.st, p.Topic, p.Partition, r.Offset, store, r.Key, v) {
				continue
			}
			entries = append(entries, state.Entry{Store: store, Key: r.Key, Value: v, Deleted: deleted})
		}
		t.cp.Changelogs[store] = p.Records[len(p.Records)-1].Offset + 1
		switch err := t.st.Restore(entries, t.cp); {
		case errors.Is(err, state.ErrTaskDropped):
			// Cleaned up as stale before placement published it: start
			// over at the next refresh.
			s.drop(cl, topology.TaskID{Subtopology: st.ID, Partition: p.Partition})
			return
		case errors.Is(err, state.ErrClosed):
			return
		case err != nil:
			fatal = fmt.Errorf("engine: standby: %w", err)
			return
		}
		s.e.m.standby.WithLabelValues(store).Add(float64(len(entries)))
	})
	return fatal
}
