package topology_test

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files from the current output")

// stateless is the program Source -> Filter -> MapValues -> To.
func stateless(t *topology.Topology) {
	s := topology.Source(t, "in", serde.String(), serde.String())
	f := topology.Filter(s, func(_, v string) bool { return v != "" })
	m := topology.MapValues(f, func(_, v string) (int64, error) { return int64(len(v)), nil })
	topology.To(topology.WithSerdes(m, serde.String(), serde.Int64()), "out")
}

// rekeyedCount is the program Source -> SelectKey -> Count -> To, with the
// Count named countName.
func rekeyedCount(countName string) func(t *topology.Topology) {
	return func(t *topology.Topology) {
		s := topology.Source(t, "in", serde.String(), serde.String())
		k := topology.SelectKey(s, func(_, v string) (string, error) { return v, nil }, serde.String())
		c := topology.Count(k, topology.Named(countName))
		topology.To(c, "out")
	}
}

func mustBuild(t *testing.T, program func(*topology.Topology), appID string) *topology.Plan {
	t.Helper()
	top := topology.New()
	program(top)
	p, err := top.Build(appID)
	if err != nil {
		t.Fatalf("Build(%q): %v", appID, err)
	}
	return p
}

// opNames returns the operator names of each sub-topology, in order.
func opNames(p *topology.Plan) [][]string {
	var out [][]string
	for _, st := range p.Describe().Subtopologies {
		var names []string
		for _, op := range st.Operators {
			names = append(names, op.Name)
		}
		out = append(out, names)
	}
	return out
}

func TestStatelessChainIsOneSubtopology(t *testing.T) {
	p := mustBuild(t, stateless, "app")
	if len(p.Subtopologies) != 1 {
		t.Fatalf("got %d sub-topologies, want 1:\n%s", len(p.Subtopologies), p)
	}
	st := p.Subtopologies[0]
	if st.ID != 0 {
		t.Errorf("ID = %d, want 0", st.ID)
	}
	if want := []topology.TopicRef{{Topic: "in", Operator: "source-in"}}; !reflect.DeepEqual(st.Sources, want) {
		t.Errorf("Sources = %+v, want %+v", st.Sources, want)
	}
	if want := []topology.TopicRef{{Topic: "out", Operator: "sink-out"}}; !reflect.DeepEqual(st.Sinks, want) {
		t.Errorf("Sinks = %+v, want %+v", st.Sinks, want)
	}
	if len(st.Stores) != 0 {
		t.Errorf("Stores = %q, want none", st.Stores)
	}
	if got := p.Stores(); len(got) != 0 {
		t.Errorf("Plan.Stores() = %v, want empty", got)
	}
	if got, want := p.SourceTopics(), []string{"in"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SourceTopics() = %q, want %q", got, want)
	}

	want := []topology.OperatorDescription{
		{Name: "source-in", Kind: topology.KindSource, Topic: "in", Next: []string{"filter-1"}},
		{Name: "filter-1", Kind: topology.KindFilter, Next: []string{"map-values-2"}},
		{Name: "map-values-2", Kind: topology.KindMapValues, Next: []string{"sink-out"}},
		{Name: "sink-out", Kind: topology.KindSink, Topic: "out"},
	}
	if got := p.Describe().Subtopologies[0].Operators; !reflect.DeepEqual(got, want) {
		t.Errorf("operators:\n got %+v\nwant %+v", got, want)
	}
}

func TestKeyChangeThenCountRepartitions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		countName string // given to Named (an unnamed Count is an error: TestStatefulOperatorsNeedNames)
		wantCount string
	}{
		{name: "named", countName: "counts", wantCount: "counts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustBuild(t, rekeyedCount(tc.countName), "app")
			topic := "app-" + tc.wantCount + "-repartition"
			store := tc.wantCount + "-store"
			if len(p.Subtopologies) != 2 {
				t.Fatalf("got %d sub-topologies, want 2:\n%s", len(p.Subtopologies), p)
			}
			s0, s1 := p.Subtopologies[0], p.Subtopologies[1]
			if s0.ID != 0 || s1.ID != 1 {
				t.Errorf("IDs = %d, %d; want 0, 1", s0.ID, s1.ID)
			}

			if want := []topology.TopicRef{{Topic: "in", Operator: "source-in"}}; !reflect.DeepEqual(s0.Sources, want) {
				t.Errorf("sub 0 Sources = %+v, want %+v", s0.Sources, want)
			}
			if want := []topology.TopicRef{{Topic: topic, Internal: true, Operator: tc.wantCount + "-sink"}}; !reflect.DeepEqual(s0.Sinks, want) {
				t.Errorf("sub 0 Sinks = %+v, want %+v", s0.Sinks, want)
			}
			if len(s0.Stores) != 0 {
				t.Errorf("sub 0 Stores = %q, want none", s0.Stores)
			}

			if want := []topology.TopicRef{{Topic: topic, Internal: true, Operator: tc.wantCount + "-source"}}; !reflect.DeepEqual(s1.Sources, want) {
				t.Errorf("sub 1 Sources = %+v, want %+v", s1.Sources, want)
			}
			if want := []topology.TopicRef{{Topic: "out", Operator: "sink-out"}}; !reflect.DeepEqual(s1.Sinks, want) {
				t.Errorf("sub 1 Sinks = %+v, want %+v", s1.Sinks, want)
			}
			if want := []string{store}; !reflect.DeepEqual(s1.Stores, want) {
				t.Errorf("sub 1 Stores = %q, want %q", s1.Stores, want)
			}

			stores := p.Stores()
			if len(stores) != 1 || stores[store] != s1 {
				t.Errorf("Plan.Stores() = %v, want exactly {%q: sub-topology 1}", stores, store)
			}
			if got, want := p.SourceTopics(), []string{"in", topic}; !reflect.DeepEqual(got, want) {
				t.Errorf("SourceTopics() = %q, want %q", got, want)
			}
			if got := p.Writer(topic); got != s0 {
				t.Errorf("Writer(%q) = %v, want sub-topology 0", topic, got)
			}
			if got := p.Writer("out"); got != nil {
				t.Errorf("Writer(%q) = sub-topology %d, want nil (not internal)", "out", got.ID)
			}
			if got := p.SubtopologyFor(topic); got != s1 {
				t.Errorf("SubtopologyFor(%q) = %v, want sub-topology 1", topic, got)
			}
			if got := p.SubtopologyFor("in"); got != s0 {
				t.Errorf("SubtopologyFor(%q) = %v, want sub-topology 0", "in", got)
			}
			if got := p.SubtopologyFor("nope"); got != nil {
				t.Errorf("SubtopologyFor(%q) = sub-topology %d, want nil", "nope", got.ID)
			}

			want := [][]string{
				{"source-in", "select-key-1", tc.wantCount + "-sink"},
				{tc.wantCount + "-source", tc.wantCount, "sink-out"},
			}
			if got := opNames(p); !reflect.DeepEqual(got, want) {
				t.Errorf("operators = %q, want %q", got, want)
			}
		})
	}
}

// TestRepartitionPlacement checks which programs get a repartition topic
// before a keyed operation.
func TestRepartitionPlacement(t *testing.T) {
	str := serde.String()
	upper := func(_, v string) (string, error) { return strings.ToUpper(v), nil }
	for _, tc := range []struct {
		name    string
		program func(t *topology.Topology)
		// internal topics, in sub-topology order; one sub-topology more
		// than there are topics.
		wantInternal []string
	}{
		{
			name: "map-values then count",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				topology.To(topology.Count(topology.MapValues(s, upper), topology.Named("c")), "out")
			},
		},
		{
			name: "filter and peek then count",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				s = topology.Peek(topology.Filter(s, func(_, _ string) bool { return true }), func(_, _ string) {})
				topology.To(topology.Count(s, topology.Named("c")), "out")
			},
		},
		{
			name: "branch then count",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				bs := topology.Branch(s, []func(_, _ string) bool{func(_, v string) bool { return v == "x" }})
				topology.To(topology.Count(bs[0], topology.Named("c")), "out")
			},
		},
		{
			name: "count then count",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				c := topology.Count(s, topology.Named("c1"))
				topology.To(topology.Count(c, topology.Named("c2")), "out")
			},
		},
		{
			name: "map then count",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				m := topology.Map(s, func(k, v string) (string, string, error) { return v, k, nil })
				topology.To(topology.Count(topology.WithSerdes(m, str, str), topology.Named("c")), "out")
			},
			wantInternal: []string{"app-c-repartition"},
		},
		{
			name: "flat-map then count",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				m := topology.FlatMap(s, func(k, v string, emit func(string, string)) error { emit(v, k); return nil })
				topology.To(topology.Count(topology.WithSerdes(m, str, str), topology.Named("c")), "out")
			},
			wantInternal: []string{"app-c-repartition"},
		},
		{
			name: "select-key then map-values then count",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				k := topology.SelectKey(s, upper, str)
				mv := topology.WithSerdes(topology.MapValues(k, upper), str, str)
				topology.To(topology.Count(mv, topology.Named("c")), "out")
			},
			wantInternal: []string{"app-c-repartition"},
		},
		{
			name: "select-key then process",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				k := topology.SelectKey(s, upper, str)
				topology.Process(k, func(*topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
					return func(*topology.Context, topology.Record[string, string], func(topology.Record[string, string]) error) error {
						return nil
					}, nil
				}, topology.Named("p"))
			},
			wantInternal: []string{"app-p-repartition"},
		},
		{
			name: "process then count",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				p := topology.Process(s, func(*topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
					return func(*topology.Context, topology.Record[string, string], func(topology.Record[string, string]) error) error {
						return nil
					}, nil
				}, topology.Named("p"))
				topology.To(topology.Count(topology.WithSerdes(p, str, str), topology.Named("c")), "out")
			},
			wantInternal: []string{"app-c-repartition"},
		},
		{
			name: "explicit repartition then count",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				k := topology.SelectKey(s, upper, str)
				topology.To(topology.Count(topology.Repartition(k, topology.Named("rp")), topology.Named("c")), "out")
			},
			wantInternal: []string{"app-rp-repartition"},
		},
		{
			name: "two key changes, two counts",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				c1 := topology.Count(topology.SelectKey(s, upper, str), topology.Named("c1"))
				c2 := topology.Count(topology.SelectKey(c1, func(k string, _ int64) (string, error) { return k, nil }, str), topology.Named("c2"))
				topology.To(c2, "out")
			},
			wantInternal: []string{"app-c1-repartition", "app-c2-repartition"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustBuild(t, tc.program, "app")
			var internal []string
			for _, st := range p.Subtopologies {
				for _, s := range st.Sinks {
					if s.Internal {
						internal = append(internal, s.Topic)
					}
				}
			}
			if !slices.Equal(internal, tc.wantInternal) {
				t.Errorf("internal topics = %q, want %q\n%s", internal, tc.wantInternal, p)
			}
			if got, want := len(p.Subtopologies), len(tc.wantInternal)+1; got != want {
				t.Errorf("got %d sub-topologies, want %d\n%s", got, want, p)
			}
		})
	}
}

// program is used by the naming and golden tests: two sub-topologies, a
// branch, derived and user names.
func program(t *topology.Topology) {
	str := serde.String()
	s := topology.Source(t, "clicks", str, str)
	bs := topology.Branch(s, []func(_, _ string) bool{
		func(_, v string) bool { return strings.HasPrefix(v, "bot") },
	}, topology.Named("split"))
	topology.To(bs[0], "bots")
	users := topology.Filter(bs[1], func(_, v string) bool { return v != "" })
	byPage := topology.SelectKey(users, func(_, v string) (string, error) { return v, nil }, str, topology.Named("by-page"))
	counts := topology.Count(byPage, topology.Named("page-counts"))
	topology.To(counts, "page-counts-out")
}

func TestNamesAreStable(t *testing.T) {
	build := func() *topology.Plan { return mustBuild(t, program, "app") }
	p1, p2 := build(), build()
	if p1.String() != p2.String() {
		t.Errorf("String() differs between two builds:\n%s\n---\n%s", p1, p2)
	}
	if !reflect.DeepEqual(p1.JSON(), p2.JSON()) {
		t.Errorf("JSON() differs between two builds:\n%s\n---\n%s", p1.JSON(), p2.JSON())
	}
	if p1.DOT() != p2.DOT() {
		t.Errorf("DOT() differs between two builds")
	}

	// Building one Topology twice gives the same plan too.
	top := topology.New()
	program(top)
	a, errA := top.Build("app")
	b, errB := top.Build("app")
	if errA != nil || errB != nil {
		t.Fatalf("Build: %v, %v", errA, errB)
	}
	if a.String() != b.String() || a.String() != p1.String() {
		t.Errorf("rebuilding one Topology changed the plan:\n%s\n---\n%s", a, b)
	}

	want := [][]string{
		// Derived: source-<topic>, sink-<topic>, <kind>-<index>,
		// <branch>-<n> for branch outputs; Named names as given.
		{"source-clicks", "split", "split-0", "split-1", "sink-bots", "filter-5", "by-page", "page-counts-sink"},
		{"page-counts-source", "page-counts", "sink-page-counts-out"},
	}
	if got := opNames(p1); !reflect.DeepEqual(got, want) {
		t.Errorf("operators = %q\nwant        %q", got, want)
	}
}

func TestStreamName(t *testing.T) {
	top := topology.New()
	s := topology.Source(top, "in", serde.String(), serde.String())
	m := topology.MapValues(s, func(_, v string) (string, error) { return v, nil })
	n := topology.Filter(m, func(_, _ string) bool { return true }, topology.Named("keep"))
	if got := s.Name(); got != "source-in" {
		t.Errorf("source Name() = %q, want %q", got, "source-in")
	}
	if got := m.Name(); got != "map-values-1" {
		t.Errorf("map-values Name() = %q, want %q", got, "map-values-1")
	}
	if got := n.Name(); got != "keep" {
		t.Errorf("filter Name() = %q, want %q", got, "keep")
	}
	if n.Topology() != top {
		t.Errorf("Topology() is not the topology the stream was built in")
	}
}

func TestAppIDPrefixesInternalTopics(t *testing.T) {
	for _, app := range []string{"a", "orders.v2", "A_b-C.9"} {
		p := mustBuild(t, rekeyedCount("counts"), app)
		want := app + "-counts-repartition"
		if got := p.Subtopologies[0].Sinks[0].Topic; got != want {
			t.Errorf("app %q: repartition topic = %q, want %q", app, got, want)
		}
		if p.AppID != app {
			t.Errorf("AppID = %q, want %q", p.AppID, app)
		}
	}
}

func TestBuildValidation(t *testing.T) {
	str := serde.String()
	long := strings.Repeat("x", 201)
	for _, tc := range []struct {
		name    string
		program func(t *topology.Topology)
		appID   string // "app" unless emptyAppID
		// emptyAppID builds with appID "".
		emptyAppID bool
		// want are fragments of the error message, one per problem.
		want []string
	}{
		{
			name: "duplicate operator name",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				f := topology.Filter(s, func(_, _ string) bool { return true }, topology.Named("x"))
				topology.To(topology.Peek(f, func(_, _ string) {}, topology.Named("x")), "out")
			},
			want: []string{`operator name "x" is used twice (filter and peek)`},
		},
		{
			name: "two sinks to one topic need names",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				topology.To(s, "out")
				topology.To(topology.Filter(s, func(_, _ string) bool { return true }), "out")
			},
			want: []string{`operator name "sink-out" is used twice (sink and sink)`},
		},
		{
			name: "queryable store not declared",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				topology.Process(s, func(*topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
					return nil, nil
				}, topology.Named("p"), topology.Stores("a"), topology.QueryableValue("b", str, str))
			},
			want: []string{`operator "p": store "b" is declared queryable but not used: add Stores("b")`},
		},
		{
			name: "invalid operator name",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				topology.To(topology.Filter(s, func(_, _ string) bool { return true }, topology.Named("no spaces")), "out")
			},
			want: []string{`operator name "no spaces": use 1-200 characters of [a-zA-Z0-9._-]`},
		},
		{
			name: "operator name too long",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				topology.To(s, "out", topology.Named(long))
			},
			want: []string{`operator name "` + long + `": use 1-200 characters`},
		},
		{
			name: "two sources on one topic",
			program: func(t *topology.Topology) {
				a := topology.Source(t, "in", str, str, topology.Named("a"))
				b := topology.Source(t, "in", str, str, topology.Named("b"))
				topology.To(topology.Merge(a, []topology.Stream[string, string]{b}), "out")
			},
			want: []string{`topic "in" is read by both "a" and "b": read it once and use the stream twice`},
		},
		{
			name: "two unnamed sources on one topic",
			program: func(t *topology.Topology) {
				topology.To(topology.Source(t, "in", str, str), "out1")
				topology.To(topology.Source(t, "in", str, str), "out2")
			},
			want: []string{`operator name "source-in" is used twice`, `topic "in" is read by both`},
		},
		{
			name: "missing serdes before To after Map",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				m := topology.Map(s, func(k, v string) (string, string, error) { return v, k, nil })
				topology.To(m, "out")
			},
			want: []string{`sink "sink-out" to "out": the stream has no serdes: use WithSerdes before To`},
		},
		{
			name: "missing serdes before To after MapValues",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				topology.To(topology.MapValues(s, func(_, v string) (string, error) { return v, nil }), "out")
			},
			want: []string{`sink "sink-out" to "out": the stream has no serdes`},
		},
		{
			name: "missing serdes before a repartitioning Count",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				m := topology.Map(s, func(k, v string) (string, string, error) { return v, k, nil })
				topology.To(topology.Count(m, topology.Named("c")), "out")
			},
			want: []string{
				`count "c": the stream has no key serde: use WithSerdes before Count`,
				`operator "c" needs to repartition "map-1" by key, but the stream has no serdes: use WithSerdes before it`,
				// Count's output has no key serde either.
				`sink "sink-out" to "out": the stream has no serdes`,
			},
		},
		{
			name:       "empty application id",
			program:    stateless,
			emptyAppID: true,
			want:       []string{`application id "": use 1-200 characters of [a-zA-Z0-9._-]`},
		},
		{
			name:    "application id with a slash",
			program: stateless,
			appID:   "team/app",
			want:    []string{`application id "team/app"`},
		},
		{
			name:    "application id too long",
			program: stateless,
			appID:   long,
			want:    []string{`application id "` + long + `"`},
		},
		{
			name:    "no operators",
			program: func(*topology.Topology) {},
			want:    []string{"the topology has no operators: start with Source"},
		},
		{
			name: "source with empty topic",
			program: func(t *topology.Topology) {
				topology.To(topology.Source(t, "", str, str, topology.Named("s")), "out")
			},
			want: []string{`source "s": empty topic`},
		},
		{
			name: "source without serdes",
			program: func(t *topology.Topology) {
				topology.Source[string, string](t, "in", nil, str)
			},
			want: []string{`source "source-in": key and value serdes are required`},
		},
		{
			name: "store declared twice",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				noop := func(*topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
					return nil, nil
				}
				topology.Process(s, noop, topology.Named("p1"), topology.Stores("st"))
				topology.Process(s, noop, topology.Named("p2"), topology.Stores("st"))
			},
			want: []string{`store "st" is declared by both "p1" and "p2": store names must be unique`},
		},
		{
			name: "invalid store name",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				topology.Process(s, func(*topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
					return nil, nil
				}, topology.Named("p"), topology.Stores("a:b"))
			},
			want: []string{`store name "a:b": use 1-200 characters of [a-zA-Z0-9._-]`},
		},
		{
			name: "count name collides with its store owner",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				topology.Count(s, topology.Named("c"))
				topology.Count(s, topology.Named("c"))
			},
			want: []string{
				`operator name "c" is used twice`,
				`store "c-store" is declared by both "c" and "c"`,
			},
		},
		{
			name: "timestamp extractor of other types",
			program: func(t *topology.Topology) {
				ts := topology.WithTimestamps(func(_ string, v int64, _ int64) (int64, error) { return v, nil })
				topology.To(topology.Source(t, "in", str, str, ts), "out")
			},
			want: []string{`source "source-in": WithTimestamps has types topology.TimestampExtractor[string,int64], want TimestampExtractor[string, string]`},
		},
		{
			name: "merge of streams from two topologies",
			program: func(t *topology.Topology) {
				a := topology.Source(t, "a", str, str)
				other := topology.New()
				b := topology.Source(other, "b", str, str)
				topology.To(topology.Merge(a, []topology.Stream[string, string]{b}), "out")
			},
			want: []string{`Merge: stream "source-b" belongs to another topology`},
		},
		{
			name: "several problems at once",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				f := topology.Filter(s, func(_, _ string) bool { return true }, topology.Named("dup"))
				p := topology.Peek(f, func(_, _ string) {}, topology.Named("dup"))
				m := topology.Map(p, func(k, v string) (string, string, error) { return v, k, nil }, topology.Named("bad name"))
				topology.To(m, "out")
			},
			appID: "bad app",
			want: []string{
				`operator name "dup" is used twice`,
				`operator name "bad name": use 1-200 characters`,
				`sink "sink-out" to "out": the stream has no serdes`,
				`application id "bad app"`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := topology.New()
			tc.program(top)
			appID := cmp.Or(tc.appID, "app")
			if tc.emptyAppID {
				appID = ""
			}
			p, err := top.Build(appID)
			if err == nil {
				t.Fatalf("Build succeeded, want an error:\n%s", p)
			}
			if p != nil {
				t.Errorf("Build returned a plan with its error")
			}
			if !errors.Is(err, topology.ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			// Each problem is its own error, each wrapping ErrInvalid.
			var errs []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			} else {
				errs = []error{err}
			}
			if len(errs) != len(tc.want) {
				t.Errorf("got %d errors, want %d:\n%v", len(errs), len(tc.want), err)
			}
			for _, e := range errs {
				if !errors.Is(e, topology.ErrInvalid) {
					t.Errorf("error %q does not wrap ErrInvalid", e)
				}
				if !strings.HasPrefix(e.Error(), "topology: invalid: ") {
					t.Errorf("error %q lacks the prefix %q", e, "topology: invalid: ")
				}
			}
		})
	}
}

func TestInvalidPlanIsNotReturned(t *testing.T) {
	// An error in one Build does not stick to the Topology for a valid
	// app id: problems found by Build are per call.
	top := topology.New()
	stateless(top)
	if _, err := top.Build("bad app"); err == nil {
		t.Fatal("Build(\"bad app\") succeeded")
	}
	if _, err := top.Build("app"); err != nil {
		t.Fatalf("Build(\"app\") after a failed Build: %v", err)
	}
}

func TestDescribeGolden(t *testing.T) {
	p := mustBuild(t, program, "app")
	for _, tc := range []struct {
		file string
		got  string
	}{
		{"two_subtopologies.txt.golden", p.String()},
		{"two_subtopologies.dot.golden", p.DOT()},
		{"two_subtopologies.json.golden", string(p.JSON()) + "\n"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, []byte(tc.got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if tc.got != string(want) {
				t.Errorf("%s differs (run with -update if the change is intended)\n got:\n%s\nwant:\n%s", path, tc.got, want)
			}
		})
	}
}

func TestJSONUnmarshalsIntoDescription(t *testing.T) {
	p := mustBuild(t, program, "app")
	var d topology.Description
	if err := json.Unmarshal(p.JSON(), &d); err != nil {
		t.Fatalf("Unmarshal: %v\n%s", err, p.JSON())
	}
	if !reflect.DeepEqual(d, p.Describe()) {
		t.Errorf("JSON round trip lost data:\n got %+v\nwant %+v", d, p.Describe())
	}
	want := topology.Description{
		AppID: "app",
		Subtopologies: []topology.SubtopologyDescription{
			{
				ID:      0,
				Sources: []topology.TopicRef{{Topic: "clicks", Operator: "source-clicks"}},
				Sinks: []topology.TopicRef{
					{Topic: "bots", Operator: "sink-bots"},
					{Topic: "app-page-counts-repartition", Internal: true, Operator: "page-counts-sink"},
				},
				Operators: []topology.OperatorDescription{
					{Name: "source-clicks", Kind: topology.KindSource, Topic: "clicks", Next: []string{"split"}},
					{Name: "split", Kind: topology.KindBranch, Next: []string{"split-0", "split-1"}},
					{Name: "split-0", Kind: "branch-out", Next: []string{"sink-bots"}},
					{Name: "split-1", Kind: "branch-out", Next: []string{"filter-5"}},
					{Name: "sink-bots", Kind: topology.KindSink, Topic: "bots"},
					{Name: "filter-5", Kind: topology.KindFilter, Next: []string{"by-page"}},
					{Name: "by-page", Kind: topology.KindSelectKey, Next: []string{"page-counts-sink"}},
					{Name: "page-counts-sink", Kind: topology.KindRepartitionSink, Topic: "app-page-counts-repartition"},
				},
			},
			{
				ID:      1,
				Sources: []topology.TopicRef{{Topic: "app-page-counts-repartition", Internal: true, Operator: "page-counts-source"}},
				Sinks:   []topology.TopicRef{{Topic: "page-counts-out", Operator: "sink-page-counts-out"}},
				Stores:  []string{"page-counts-store"},
				Operators: []topology.OperatorDescription{
					{Name: "page-counts-source", Kind: topology.KindRepartitionSrc, Topic: "app-page-counts-repartition", Next: []string{"page-counts"}},
					{Name: "page-counts", Kind: topology.KindProcess, Stores: []string{"page-counts-store"}, Next: []string{"sink-page-counts-out"}},
					{Name: "sink-page-counts-out", Kind: topology.KindSink, Topic: "page-counts-out"},
				},
			},
		},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Description:\n got %+v\nwant %+v", d, want)
	}

	// The wire names are part of the contract (tools read them).
	var raw map[string]any
	if err := json.Unmarshal(p.JSON(), &raw); err != nil {
		t.Fatal(err)
	}
	subs, _ := raw["subtopologies"].([]any)
	if raw["app_id"] != "app" || len(subs) != 2 {
		t.Fatalf("top-level JSON = %v", raw)
	}
	sub1, _ := subs[1].(map[string]any)
	for _, k := range []string{"id", "sources", "sinks", "stores", "operators"} {
		if _, ok := sub1[k]; !ok {
			t.Errorf("sub-topology 1 JSON lacks %q: %v", k, sub1)
		}
	}
	src, _ := sub1["sources"].([]any)
	if len(src) != 1 || !reflect.DeepEqual(src[0], map[string]any{
		"topic": "app-page-counts-repartition", "internal": true, "operator": "page-counts-source",
	}) {
		t.Errorf("sub-topology 1 sources JSON = %v", src)
	}
}

func TestTaskIDString(t *testing.T) {
	for _, tc := range []struct {
		id   topology.TaskID
		want string
	}{
		{topology.TaskID{}, "0_0"},
		{topology.TaskID{Subtopology: 1, Partition: 7}, "1_7"},
		{topology.TaskID{Subtopology: 12, Partition: 345}, "12_345"},
	} {
		if got := tc.id.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.id, got, tc.want)
		}
	}
}
