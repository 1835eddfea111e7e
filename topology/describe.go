package topology

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Description is the JSON form of a Plan.
type Description struct {
	AppID         string                   `json:"app_id"`
	Subtopologies []SubtopologyDescription `json:"subtopologies"`
}

// SubtopologyDescription describes one sub-topology.
type SubtopologyDescription struct {
	ID        int                   `json:"id"`
	Sources   []TopicRef            `json:"sources"`
	Sinks     []TopicRef            `json:"sinks,omitempty"`
	Stores    []string              `json:"stores,omitempty"`
	Operators []OperatorDescription `json:"operators"`
}

// OperatorDescription describes one operator and where its records go.
type OperatorDescription struct {
	Name   string   `json:"name"`
	Kind   Kind     `json:"kind"`
	Topic  string   `json:"topic,omitempty"`
	Stores []string `json:"stores,omitempty"`
	Next   []string `json:"next,omitempty"`
}

// Describe returns the plan's structure.
func (p *Plan) Describe() Description {
	d := Description{AppID: p.AppID}
	for _, st := range p.Subtopologies {
		sd := SubtopologyDescription{ID: st.ID, Sources: st.Sources, Sinks: st.Sinks, Stores: st.Stores}
		for _, n := range st.nodes {
			od := OperatorDescription{Name: n.name, Kind: n.kind, Stores: n.stores}
			if n.topic != "" {
				od.Topic = p.topicName(n)
			}
			for _, c := range n.children {
				od.Next = append(od.Next, c.name)
			}
			sd.Operators = append(sd.Operators, od)
		}
		d.Subtopologies = append(d.Subtopologies, sd)
	}
	return d
}

// JSON returns Describe as indented JSON.
func (p *Plan) JSON() []byte {
	b, _ := json.MarshalIndent(p.Describe(), "", "  ") // plain structs: cannot fail
	return b
}

// String returns Describe as text: one block per sub-topology, one line per
// operator with the topic it reads or writes and where its records go.
func (p *Plan) String() string {
	var b strings.Builder
	d := p.Describe()
	fmt.Fprintf(&b, "Topology %q: %d sub-topologies\n", d.AppID, len(d.Subtopologies))
	for _, st := range d.Subtopologies {
		fmt.Fprintf(&b, "\nSub-topology %d (one task per partition of:", st.ID)
		for _, s := range st.Sources {
			fmt.Fprintf(&b, " %s", s.Topic)
		}
		b.WriteString(")\n")
		for _, op := range st.Operators {
			fmt.Fprintf(&b, "  %-32s %-18s", op.Name, op.Kind)
			switch op.Kind {
			case KindSource, KindRepartitionSrc:
				fmt.Fprintf(&b, " <- %s", op.Topic)
			case KindSink, KindRepartitionSink:
				fmt.Fprintf(&b, " -> %s", op.Topic)
			}
			if len(op.Stores) > 0 {
				fmt.Fprintf(&b, " stores=%s", strings.Join(op.Stores, ","))
			}
			if len(op.Next) > 0 {
				fmt.Fprintf(&b, " --> %s", strings.Join(op.Next, ", "))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// DOT returns the plan as a Graphviz digraph: a cluster per sub-topology,
// operators as boxes, topics as ellipses.
func (p *Plan) DOT() string {
	var b strings.Builder
	d := p.Describe()
	fmt.Fprintf(&b, "digraph %q {\n  rankdir=LR;\n", d.AppID)
	topics := make(map[string]bool)
	for _, st := range d.Subtopologies {
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    label=\"sub-topology %d\";\n", st.ID, st.ID)
		for _, op := range st.Operators {
			fmt.Fprintf(&b, "    %q [shape=box,label=\"%s\\n(%s)\"];\n", op.Name, op.Name, op.Kind)
		}
		b.WriteString("  }\n")
		for _, op := range st.Operators {
			for _, nx := range op.Next {
				fmt.Fprintf(&b, "  %q -> %q;\n", op.Name, nx)
			}
			if op.Topic == "" {
				continue
			}
			topics[op.Topic] = true
			switch op.Kind {
			case KindSource, KindRepartitionSrc:
				fmt.Fprintf(&b, "  %q -> %q;\n", "topic:"+op.Topic, op.Name)
			default:
				fmt.Fprintf(&b, "  %q -> %q;\n", op.Name, "topic:"+op.Topic)
			}
		}
	}
	for _, st := range d.Subtopologies {
		for _, s := range append(append([]TopicRef(nil), st.Sources...), st.Sinks...) {
			if topics[s.Topic] {
				fmt.Fprintf(&b, "  %q [shape=ellipse,label=%q];\n", "topic:"+s.Topic, s.Topic)
				delete(topics, s.Topic)
			}
		}
	}
	b.WriteString("}\n")
	return b.String()
}
