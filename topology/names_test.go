package topology_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// TestStatefulOperatorsNeedNames: an operator whose name reaches Kafka (a
// store, a repartition topic, timers) must be Named; Build fails with one
// error naming the operator and saying how to fix it.
func TestStatefulOperatorsNeedNames(t *testing.T) {
	str := serde.String()
	rekey := func(s topology.Stream[string, string]) topology.Stream[string, string] {
		return topology.SelectKey(s, func(_, v string) (string, error) { return v, nil }, str, topology.Named("by-value"))
	}
	noop := func(*topology.Context) (topology.ProcessFunc[string, string, string, string], error) { return nil, nil }
	timed := func(*topology.Context, *topology.Timers[string]) (topology.TimedProcessor[string, string, string, string], error) {
		return topology.TimedProcessor[string, string, string, string]{}, nil
	}
	tum, err := windows.Tumbling(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		program func(s topology.Stream[string, string])
		want    string // the error, after "topology: invalid: "
	}{
		{
			name:    "count",
			program: func(s topology.Stream[string, string]) { topology.Count(s) },
			want:    `count operator "count-1" has state named after it (store "count-1-store")`,
		},
		{
			name:    "count after a key change",
			program: func(s topology.Stream[string, string]) { topology.Count(rekey(s)) },
			want:    `count operator "count-2" has state named after it (store "count-2-store", repartition topic "<app>-count-2-repartition")`,
		},
		{
			name: "aggregate",
			program: func(s topology.Stream[string, string]) {
				topology.Aggregate(s, windows.Spec{Assigner: tum}, windows.Count[string](), serde.Int64())
			},
			want: `aggregate operator "aggregate-1" has state named after it (store "aggregate-1-store")`,
		},
		{
			name:    "process with a store",
			program: func(s topology.Stream[string, string]) { topology.Process(s, noop, topology.Stores("seen")) },
			want:    `process operator "process-1" has state named after it (store "seen")`,
		},
		{
			name:    "process after a key change",
			program: func(s topology.Stream[string, string]) { topology.Process(rekey(s), noop) },
			want:    `process operator "process-2" has state named after it (repartition topic "<app>-process-2-repartition")`,
		},
		{
			name:    "process with timers",
			program: func(s topology.Stream[string, string]) { topology.ProcessTimed(s, timed) },
			want:    `process operator "process-1" has state named after it (store "process-1-timers")`,
		},
		{
			name:    "repartition",
			program: func(s topology.Stream[string, string]) { topology.Repartition(s) },
			want:    `repartition operator "repartition-1" has state named after it (repartition topic "<app>-repartition-1-repartition")`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := topology.New()
			tc.program(topology.Source(top, "in", str, str))
			p, err := top.Build("app")
			if err == nil {
				t.Fatalf("Build succeeded, want an error naming the operator:\n%s", p)
			}
			if !errors.Is(err, topology.ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) != 1 {
				t.Errorf("got %d errors, want 1:\n%v", len(j.Unwrap()), err)
			}
			want := "topology: invalid: " + tc.want + ", but no name of its own:"
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error:\n %v\ndoes not start with\n %s", err, want)
			}
			if !strings.Contains(err.Error(), `topology.Named("...")`) {
				t.Errorf("error does not say to use topology.Named(\"...\"):\n%v", err)
			}
		})
	}
}

// TestStatelessOperatorsKeepDerivedNames: operators whose names reach no
// topic or store may stay unnamed, Process too when it keeps no state.
func TestStatelessOperatorsKeepDerivedNames(t *testing.T) {
	str := serde.String()
	top := topology.New()
	s := topology.Source(top, "in", str, str)
	f := topology.Filter(s, func(_, v string) bool { return v != "" })
	m := topology.MapValues(f, func(_, v string) (string, error) { return v, nil })
	p := topology.Process(m, func(*topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
		return func(_ *topology.Context, r topology.Record[string, string], out func(topology.Record[string, string]) error) error {
			return out(r)
		}, nil
	})
	topology.To(topology.WithSerdes(p, str, str), "out")
	plan, err := top.Build("app")
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	want := [][]string{{"source-in", "filter-1", "map-values-2", "process-3", "sink-out"}}
	if got := opNames(plan); !reflect.DeepEqual(got, want) {
		t.Errorf("operators = %q, want %q", got, want)
	}
}

// footprint is what a plan keeps in Kafka: its stores and internal topics.
func footprint(p *topology.Plan) (stores, internal []string) {
	for _, st := range p.Subtopologies {
		stores = append(stores, st.Stores...)
		for _, s := range st.Sinks {
			if s.Internal {
				internal = append(internal, s.Topic)
			}
		}
	}
	return stores, internal
}

// TestInsertedFilterKeepsStateNames: adding an operator before a stateful
// one never renames its state. Unnamed, it used to: count-2-store became
// count-3-store, and a redeploy started counting from zero.
func TestInsertedFilterKeepsStateNames(t *testing.T) {
	str := serde.String()
	build := func(filter bool, opts ...topology.Opt) (*topology.Plan, error) {
		top := topology.New()
		s := topology.Source(top, "in", str, str)
		if filter {
			s = topology.Filter(s, func(_, v string) bool { return v != "" })
		}
		k := topology.SelectKey(s, func(_, v string) (string, error) { return v, nil }, str)
		topology.To(topology.Count(k, opts...), "out")
		return top.Build("app")
	}
	for _, filter := range []bool{false, true} {
		if p, err := build(filter); !errors.Is(err, topology.ErrInvalid) || !strings.Contains(err.Error(), `topology.Named("...")`) {
			t.Fatalf("unnamed Count (filter %v): Build = %v, want an error asking for a name; plan:\n%v", filter, err, p)
		}
	}
	before, err := build(false, topology.Named("counts"))
	if err != nil {
		t.Fatal(err)
	}
	after, err := build(true, topology.Named("counts"))
	if err != nil {
		t.Fatal(err)
	}
	s1, i1 := footprint(before)
	s2, i2 := footprint(after)
	if !reflect.DeepEqual(s1, s2) || !reflect.DeepEqual(i1, i2) {
		t.Errorf("inserting a Filter changed the state: stores %q -> %q, internal topics %q -> %q", s1, s2, i1, i2)
	}
	if want := []string{"counts-store"}; !reflect.DeepEqual(s2, want) {
		t.Errorf("stores = %q, want %q", s2, want)
	}
	if want := []string{"app-counts-repartition"}; !reflect.DeepEqual(i2, want) {
		t.Errorf("internal topics = %q, want %q", i2, want)
	}
}
