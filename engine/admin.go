package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/weirstream/weir/changelog"
	"github.com/weirstream/weir/topology"
)

// DLQTopic is the dead-letter topic of an application.
func DLQTopic(appID string) string { return topology.DLQTopic(appID) }

// layout is the partition count of every topic the application touches and
// the task count of every sub-topology.
type layout struct {
	partitions map[string]int32 // topic -> partition count
	tasks      []int32          // sub-topology id -> task count
}

// setupTopics reads the source topics' partition counts, derives each
// sub-topology's task count, and creates the internal topics (repartition,
// changelog, dead-letter) and missing output topics.
//
// A sub-topology has as many tasks as its largest source topic has
// partitions. A repartition topic has as many partitions as the
// sub-topology that writes it has tasks; a changelog topic as many as its
// store's sub-topology.
func setupTopics(ctx context.Context, adm *kadm.Client, plan *topology.Plan) (*layout, error) {
	lay := &layout{partitions: make(map[string]int32)}

	var external []string
	for _, st := range plan.Subtopologies {
		for _, s := range st.Sources {
			if !s.Internal {
				external = append(external, s.Topic)
			}
		}
	}
	existing, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("engine: list topics: %w", err)
	}
	var errs []error
	for _, t := range external {
		td, ok := existing[t]
		if !ok {
			errs = append(errs, fmt.Errorf("engine: source topic %q does not exist: create it first (for example with kcat, or let 'processor dev-broker' auto-create it by producing to it)", t))
			continue
		}
		lay.partitions[t] = int32(len(td.Partitions))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	if lay.tasks, err = plan.TaskCounts(func(topic string) int32 { return lay.partitions[topic] }); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	for _, st := range plan.Subtopologies {
		for _, s := range st.Sinks {
			if s.Internal {
				lay.partitions[s.Topic] = lay.tasks[st.ID]
			}
		}
	}

	want := make(map[string]topicSpec)
	for _, st := range plan.Subtopologies {
		n := lay.tasks[st.ID]
		for _, s := range st.Sinks {
			if s.Internal {
				want[s.Topic] = topicSpec{partitions: n, internal: true, repartition: true}
			} else if _, ok := existing[s.Topic]; !ok {
				want[s.Topic] = topicSpec{partitions: n}
			}
		}
		for _, store := range st.Stores {
			want[changelog.Topic(plan.AppID, store)] = topicSpec{partitions: n, internal: true, compact: true}
		}
	}
	want[DLQTopic(plan.AppID)] = topicSpec{partitions: 1, internal: true}
	want[topology.LateTopic(plan.AppID)] = topicSpec{partitions: 1, internal: true}

	for topic, spec := range want {
		if td, ok := existing[topic]; ok {
			if spec.internal && int32(len(td.Partitions)) != spec.partitions {
				return nil, fmt.Errorf("engine: internal topic %q has %d partitions, want %d: the source partition counts changed; delete the internal topics of application %q (and reset its group) to start over", topic, len(td.Partitions), spec.partitions, plan.AppID)
			}
			continue
		}
		var configs map[string]*string
		switch {
		case spec.compact:
			configs = changelog.TopicConfigs()
		case spec.repartition:
			// Records keep their event timestamps; time-based retention
			// must not delete old ones before the next sub-topology reads
			// them (Kafka Streams does the same).
			forever := "-1"
			configs = map[string]*string{"retention.ms": &forever}
		}
		resp, err := adm.CreateTopic(ctx, spec.partitions, -1, configs, topic)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return nil, fmt.Errorf("engine: create topic %q: %w", topic, err)
		}
		if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			return nil, fmt.Errorf("engine: create topic %q: %w", topic, resp.Err)
		}
	}
	// Output topics that existed keep their partition counts.
	for _, st := range plan.Subtopologies {
		for _, s := range st.Sinks {
			if td, ok := existing[s.Topic]; ok {
				lay.partitions[s.Topic] = int32(len(td.Partitions))
			} else {
				lay.partitions[s.Topic] = want[s.Topic].partitions
			}
		}
	}
	for _, topic := range []string{DLQTopic(plan.AppID), topology.LateTopic(plan.AppID)} {
		lay.partitions[topic] = 1
		if td, ok := existing[topic]; ok {
			lay.partitions[topic] = int32(len(td.Partitions))
		}
	}
	return lay, nil
}

type topicSpec struct {
	partitions  int32
	internal    bool
	compact     bool
	repartition bool
}
