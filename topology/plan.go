package topology

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
)

// TaskID names a task: one sub-topology bound to one partition number.
type TaskID struct {
	Subtopology int
	Partition   int32
}

// String renders the id as "<subtopology>_<partition>", e.g. "1_7".
func (id TaskID) String() string { return fmt.Sprintf("%d_%d", id.Subtopology, id.Partition) }

// Plan is a validated topology bound to an application id: its
// sub-topologies, their topics and stores. It is immutable and safe for
// concurrent use; each task builds its own runtime from it.
type Plan struct {
	AppID         string
	Subtopologies []*Subtopology
	t             *Topology
	subOf         map[*node]*Subtopology
}

// Subtopology is a connected part of the graph between repartition topics.
// It runs as one task per partition number of its source topics.
type Subtopology struct {
	ID      int
	Sources []TopicRef
	Sinks   []TopicRef
	Stores  []string
	nodes   []*node
	plan    *Plan
}

// TopicRef is a topic read or written by a sub-topology.
type TopicRef struct {
	Topic    string `json:"topic"`
	Internal bool   `json:"internal,omitempty"` // a repartition topic the engine creates
	Operator string `json:"operator"`
}

// maxTopicLen is Kafka's limit on topic names.
const maxTopicLen = 249

var validAppID = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)

// Build validates the topology and binds it to appID, which is also the
// consumer group id, the transactional id prefix and the prefix of every
// internal topic. It reports every problem at once.
func (t *Topology) Build(appID string) (*Plan, error) {
	errs := append([]error(nil), t.errs...)
	if !validAppID.MatchString(appID) {
		errs = append(errs, invalidf("application id %q: use 1-200 characters of [a-zA-Z0-9._-]", appID))
	}
	if len(t.nodes) == 0 {
		errs = append(errs, invalidf("the topology has no operators: start with Source"))
	}
	for _, n := range t.nodes {
		if n.build == nil {
			errs = append(errs, invalidf("operator %q has no runtime (internal error)", n.name))
		}
	}
	p := &Plan{AppID: appID, t: t, subOf: make(map[*node]*Subtopology)}

	// Sub-topologies are the connected components of the operator graph;
	// repartition topics are the only links between them (a repartition
	// sink and its source share a topic, not an edge).
	parent := make([]int, len(t.nodes))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for _, n := range t.nodes {
		for _, c := range n.children {
			if c.id >= len(t.nodes) || t.nodes[c.id] != c {
				continue // a child in another topology (reported by Merge)
			}
			a, b := find(n.id), find(c.id)
			if a != b {
				if a < b {
					parent[b] = a
				} else {
					parent[a] = b
				}
			}
		}
	}
	byRoot := make(map[int]*Subtopology)
	var roots []int
	for _, n := range t.nodes {
		r := find(n.id)
		st, ok := byRoot[r]
		if !ok {
			st = &Subtopology{plan: p}
			byRoot[r] = st
			roots = append(roots, r)
		}
		st.nodes = append(st.nodes, n)
		p.subOf[n] = st
	}
	sort.Ints(roots)
	readers := make(map[string]string)
	var topics []string
	for i, r := range roots {
		st := byRoot[r]
		st.ID = i
		p.Subtopologies = append(p.Subtopologies, st)
		for _, n := range st.nodes {
			ref := TopicRef{Topic: p.topicName(n), Internal: n.internal, Operator: n.name}
			switch n.kind {
			case KindSource, KindRepartitionSrc:
				if prev, dup := readers[ref.Topic]; dup {
					errs = append(errs, invalidf("topic %q is read by both %q and %q: read it once and use the stream twice", ref.Topic, prev, n.name))
				}
				readers[ref.Topic] = n.name
				st.Sources = append(st.Sources, ref)
			case KindSink, KindRepartitionSink:
				st.Sinks = append(st.Sinks, ref)
			}
			st.Stores = append(st.Stores, n.stores...)
		}
	}
	for _, n := range t.nodes {
		for _, st := range n.stores {
			topics = append(topics, p.AppID+"-"+st+"-changelog")
		}
		if n.internal {
			topics = append(topics, p.topicName(n))
		}
	}
	for _, topic := range topics {
		if len(topic) > maxTopicLen {
			errs = append(errs, invalidf("internal topic %q is %d characters, Kafka allows %d: shorten the application id or the operator/store name", topic, len(topic), maxTopicLen))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// topicName is the Kafka topic of a source or sink node.
func (p *Plan) topicName(n *node) string {
	if n.internal {
		return p.AppID + "-" + n.topic
	}
	return n.topic
}

// Writer returns the sub-topology that writes the internal topic, or nil
// when the topic is not internal.
func (p *Plan) Writer(topic string) *Subtopology {
	for _, st := range p.Subtopologies {
		for _, s := range st.Sinks {
			if s.Internal && s.Topic == topic {
				return st
			}
		}
	}
	return nil
}

// SubtopologyFor returns the sub-topology reading topic, or nil.
func (p *Plan) SubtopologyFor(topic string) *Subtopology {
	for _, st := range p.Subtopologies {
		for _, s := range st.Sources {
			if s.Topic == topic {
				return st
			}
		}
	}
	return nil
}

// SourceTopics returns every topic the application reads, external and
// internal, in sub-topology order.
func (p *Plan) SourceTopics() []string {
	var ts []string
	for _, st := range p.Subtopologies {
		for _, s := range st.Sources {
			ts = append(ts, s.Topic)
		}
	}
	return ts
}

// Stores returns every state store with the sub-topology that owns it.
func (p *Plan) Stores() map[string]*Subtopology {
	m := make(map[string]*Subtopology)
	for _, st := range p.Subtopologies {
		for _, s := range st.Stores {
			m[s] = st
		}
	}
	return m
}

// TaskCounts returns the number of tasks of every sub-topology, by id, given
// the partition counts of the external source topics: a sub-topology has as
// many tasks as its largest source has partitions, and a repartition topic
// as many partitions as the sub-topology writing it has tasks. It fails when
// a sub-topology ends up with none (its repartition topics form a cycle, or
// a source has no partitions).
func (p *Plan) TaskCounts(partitions func(topic string) int32) ([]int32, error) {
	tasks := make([]int32, len(p.Subtopologies))
	// Repartition sources depend on their writer: iterate until stable
	// (as many rounds as there are sub-topologies suffice).
	for range p.Subtopologies {
		for _, st := range p.Subtopologies {
			var n int32
			for _, s := range st.Sources {
				if s.Internal {
					n = max(n, tasks[p.Writer(s.Topic).ID])
				} else {
					n = max(n, partitions(s.Topic))
				}
			}
			tasks[st.ID] = n
		}
	}
	for _, st := range p.Subtopologies {
		if tasks[st.ID] == 0 {
			return nil, fmt.Errorf("topology: sub-topology %d has no partitions to read: its sources have none, or its repartition topics form a cycle", st.ID)
		}
	}
	return tasks, nil
}
