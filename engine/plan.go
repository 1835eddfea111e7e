package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weirstream/weir/changelog"
	"github.com/weirstream/weir/topology"
)

// ErrStateOrphaned is returned by Run when the topology drops state that
// the application kept when it last ran.
var ErrStateOrphaned = errors.New("engine: the topology would orphan state")

// PlanTopic is the topic where an application records the state its plan
// keeps: one compacted partition, one record (key "plan", JSON value)
// written when a process starts a plan whose state differs from the
// recorded one.
func PlanTopic(appID string) string { return appID + "-plan" }

// planRecord is what a plan keeps in Kafka, named: its stores (and their
// changelog topics) and its repartition topics. Lists are sorted, so two
// processes starting one plan write the same bytes.
type planRecord struct {
	Version      int      `json:"version"`
	Stores       []string `json:"stores"`
	Changelogs   []string `json:"changelogs"`
	Repartitions []string `json:"repartitions"`
}

const planKey = "plan"

func recordOf(p *topology.Plan) planRecord {
	r := planRecord{Version: 1, Stores: []string{}, Changelogs: []string{}, Repartitions: []string{}}
	for _, st := range p.Subtopologies {
		for _, s := range st.Stores {
			r.Stores = append(r.Stores, s)
			r.Changelogs = append(r.Changelogs, changelog.Topic(p.AppID, s))
		}
		for _, s := range st.Sinks {
			if s.Internal {
				r.Repartitions = append(r.Repartitions, s.Topic)
			}
		}
	}
	slices.Sort(r.Stores)
	slices.Sort(r.Changelogs)
	slices.Sort(r.Repartitions)
	return r
}

// orphaned lists the state of prev that next does not keep.
func orphaned(appID string, prev, next planRecord) []string {
	var gone []string
	for _, s := range prev.Stores {
		if !slices.Contains(next.Stores, s) {
			gone = append(gone, fmt.Sprintf("store %q (changelog topic %q)", s, changelog.Topic(appID, s)))
		}
	}
	for _, t := range prev.Repartitions {
		if !slices.Contains(next.Repartitions, t) {
			gone = append(gone, fmt.Sprintf("repartition topic %q", t))
		}
	}
	return gone
}

// setup checks the plan against the one the application ran last, creates
// the topics (setupTopics) and records the plan. A plan that drops
// recorded state is refused before anything is created, unless
// AllowStateLoss. It runs on Run's goroutine, before the group is joined.
//
// Processes starting at once with one plan read the same record, decide
// alike, and write identical records: all of them start.
func (e *Engine) setup(ctx context.Context, adm *kadm.Client) (*layout, error) {
	topic := PlanTopic(e.cfg.AppID)
	prev, found, err := e.readPlan(ctx, adm, topic)
	if err != nil {
		return nil, err
	}
	next := recordOf(e.plan)
	if found {
		if gone := orphaned(e.cfg.AppID, prev, next); len(gone) > 0 {
			if !e.cfg.AllowStateLoss {
				return nil, fmt.Errorf("%w: application %q last ran a topology with state this one does not have (recorded in topic %q): %s. "+
					"Usually an operator was renamed: give it its old name with topology.Named, "+
					"or pass --allow-state-loss (WEIR_ALLOW_STATE_LOSS=true, engine.Config.AllowStateLoss) to start without that state; its topics are left as they are",
					ErrStateOrphaned, e.cfg.AppID, topic, strings.Join(gone, ", "))
			}
			e.log.Warn("starting without state the application kept when it last ran (allowed)", "orphaned", strings.Join(gone, ", "))
		}
	}
	lay, err := setupTopics(ctx, adm, e.plan)
	if err != nil {
		return nil, err
	}
	if found || len(next.Stores)+len(next.Repartitions) > 0 {
		if err := e.writePlan(ctx, adm, topic, prev, next); err != nil {
			return nil, err
		}
	}
	return lay, nil
}

// readPlan returns the last plan record of topic; found is false when the
// topic or the record does not exist (the application never ran with
// state, or ran before weir recorded plans).
func (e *Engine) readPlan(ctx context.Context, adm *kadm.Client, topic string) (r planRecord, found bool, err error) {
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return r, false, fmt.Errorf("engine: plan record: list topic %q: %w", topic, err)
	}
	switch td, ok := tds[topic]; {
	case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
		return r, false, nil
	case td.Err != nil:
		return r, false, fmt.Errorf("engine: plan record: topic %q: %w", topic, td.Err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	ends, err2 := adm.ListEndOffsets(ctx, topic)
	if err2 == nil {
		err2 = ends.Error()
	}
	if err := errors.Join(err, err2); err != nil {
		return r, false, fmt.Errorf("engine: plan record: offsets of %q: %w", topic, err)
	}
	start, _ := starts.Lookup(topic, 0)
	end, ok := ends.Lookup(topic, 0)
	if !ok || end.Offset <= start.Offset {
		return r, false, nil
	}
	// Transaction markers are kept: the topic may end with one (a
	// broker writes them where transactions touched it), and the loop
	// below reads until it has seen the offset before the end.
	cl, err := kgo.NewClient(append(e.clientOpts(), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))...)
	if err != nil {
		return r, false, fmt.Errorf("engine: plan record: client: %w", err)
	}
	defer cl.Close()
	var last *kgo.Record
	for pos := int64(-1); pos < end.Offset-1; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return r, false, fmt.Errorf("engine: plan record: read %q up to offset %d: %w", topic, end.Offset, err)
		}
		if err := fs.Err0(); err != nil {
			return r, false, fmt.Errorf("engine: plan record: read %q: %w", topic, err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			pos = max(pos, rec.Offset)
			if !rec.Attrs.IsControl() && string(rec.Key) == planKey && rec.Offset < end.Offset {
				last = rec
			}
		})
	}
	if last == nil {
		return r, false, nil
	}
	if err := json.Unmarshal(last.Value, &r); err != nil || r.Version != 1 {
		return r, false, fmt.Errorf("engine: plan record %s[0]@%d is not a version 1 plan record (%v): delete topic %q to record this plan afresh", topic, last.Offset, err, topic)
	}
	return r, true, nil
}

// writePlan records next unless it equals prev.
func (e *Engine) writePlan(ctx context.Context, adm *kadm.Client, topic string, prev, next planRecord) error {
	old, _ := json.Marshal(prev) // plain struct: cannot fail
	value, _ := json.Marshal(next)
	if bytes.Equal(old, value) {
		return nil
	}
	resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("engine: plan record: create topic %q: %w", topic, err)
	}
	cl, err := kgo.NewClient(e.clientOpts()...)
	if err != nil {
		return fmt.Errorf("engine: plan record: client: %w", err)
	}
	defer cl.Close()
	rec := &kgo.Record{Topic: topic, Partition: 0, Key: []byte(planKey), Value: value}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("engine: plan record: write to %q: %w", topic, err)
	}
	e.log.Info("recorded the plan's state", "topic", topic, "plan", string(value))
	return nil
}
