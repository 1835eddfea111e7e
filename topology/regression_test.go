package topology_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
)

// Build reports every problem at once: a topic read twice is reported even
// when the DSL calls also found problems (here: a bad app id).
func TestBuildReportsReadConflictWithOtherProblems(t *testing.T) {
	str := serde.String()
	top := topology.New()
	a := topology.Source(top, "in", str, str, topology.Named("a"))
	b := topology.Source(top, "in", str, str, topology.Named("b"))
	topology.To(topology.Merge(a, []topology.Stream[string, string]{b}), "out")
	topology.To(topology.Filter(a, func(_, _ string) bool { return true }, topology.Named("bad name")), "out2")
	_, err := top.Build("app")
	for _, w := range []string{`operator name "bad name"`, `topic "in" is read by both "a" and "b"`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Build error does not mention %q:\n%v", w, err)
		}
	}
}

// Merging streams of two topologies is reported by Build of either one,
// and never panics.
func TestMergeAcrossTopologiesPanicsInOtherBuild(t *testing.T) {
	str := serde.String()
	t1, t2 := topology.New(), topology.New()
	a := topology.Source(t1, "a", str, str)
	b := topology.Source(t2, "b", str, str)
	topology.To(topology.Merge(a, []topology.Stream[string, string]{b}), "out")
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("t2.Build panicked: %v", r)
		}
	}()
	if _, err := t2.Build("app"); !errors.Is(err, topology.ErrInvalid) {
		t.Fatalf("t2.Build = %v, want ErrInvalid", err)
	}
}

// Internal topic names must be valid Kafka topic names (at most 249
// characters).
func TestInternalTopicTooLong(t *testing.T) {
	str := serde.String()
	top := topology.New()
	s := topology.Source(top, "in", str, str)
	k := topology.SelectKey(s, func(_, v string) (string, error) { return v, nil }, str)
	topology.To(topology.Count(k, topology.Named(strings.Repeat("c", 150))), "out")
	p, err := top.Build(strings.Repeat("a", 150))
	if !errors.Is(err, topology.ErrInvalid) {
		t.Fatalf("Build = %v, want ErrInvalid; plan writes %q (%d chars)", err, p.Subtopologies[0].Sinks[0].Topic, len(p.Subtopologies[0].Sinks[0].Topic))
	}
}

// An empty (non-null) value read with Bytes must not be produced as a
// tombstone; an empty key must be hashed like Java does, not round-robined.
func TestBytesEmptyBecomesNull(t *testing.T) {
	bs := serde.Bytes()
	env := newFakeEnv(map[string]int32{"out": 4})
	task := newTask(t, func(t *topology.Topology) { topology.To(topology.Source(t, "in", bs, bs), "out") }, 0, 0, env)
	if err := task.Process(&kgo.Record{Topic: "in", Key: []byte{}, Value: []byte{}, Timestamp: time.UnixMilli(1)}); err != nil {
		t.Fatal(err)
	}
	r := env.produced[0]
	if r.Value == nil {
		t.Errorf("empty value produced as nil (a tombstone)")
	}
	if r.Key == nil {
		t.Errorf("empty key produced as nil (round-robin instead of murmur2)")
	}
}
