package topology_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// TestOptionsAreChecked: an option given to an operator it does not apply
// to is a Build error naming the operator and the option, and its effect
// (a store, a changelog) is not kept.
// TestCheckedAssignerBuilds: a valid assigner through windows.Checked is
// the assigner itself, and the topology builds.
func TestCheckedAssignerBuilds(t *testing.T) {
	top := topology.New()
	s := topology.Source(top, "in", serde.String(), serde.String())
	topology.Aggregate(s, windows.Spec{Assigner: windows.Checked(windows.Tumbling(time.Second))},
		windows.Count[string](), serde.Int64(), topology.Named("agg"))
	if _, err := top.Build("app"); err != nil {
		t.Fatal(err)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	str := serde.String()
	wm := topology.WithWatermarks(windows.Monotonous())
	ts := topology.WithTimestamps(func(_, _ string, t int64) (int64, error) { return t, nil })
	keep := func(_, _ string) bool { return true }
	proc := func(*topology.Context) (topology.ProcessFunc[string, string, string, string], error) { return nil, nil }
	tum, err := windows.Tumbling(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		program func(t *topology.Topology)
		want    []string // one fragment per error
	}{
		{
			name: "watermarks and a ghost store on an unnamed filter",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				topology.To(topology.Filter(s, keep, wm, topology.Stores("ghost")), "out")
			},
			want: []string{
				`filter operator "filter-1": option WithWatermarks does not apply (only Source)`,
				`filter operator "filter-1": option Stores does not apply (only Process and ProcessTimed)`,
			},
		},
		{
			name: "timestamps on map-values",
			program: func(t *topology.Topology) {
				s := topology.Source(t, "in", str, str)
				topology.MapValues(s, func(_, v string) (string, error) { return v, nil }, topology.Named("mv"), ts)
			},
			want: []string{`map-values operator "mv": option WithTimestamps does not apply (only Source)`},
		},
		{
			name: "stores on a sink",
			program: func(t *topology.Topology) {
				topology.To(topology.Source(t, "in", str, str), "out", topology.Stores("s"))
			},
			want: []string{`sink operator "sink-out": option Stores does not apply (only Process and ProcessTimed)`},
		},
		{
			name: "watermarks on process",
			program: func(t *topology.Topology) {
				topology.Process(topology.Source(t, "in", str, str), proc, topology.Named("p"), wm)
			},
			want: []string{`process operator "p": option WithWatermarks does not apply (only Source)`},
		},
		{
			name: "stores on count",
			program: func(t *topology.Topology) {
				topology.Count(topology.Source(t, "in", str, str), topology.Named("c"), topology.Stores("extra"))
			},
			want: []string{`count operator "c": option Stores does not apply (only Process and ProcessTimed)`},
		},
		{
			name: "queryable on aggregate",
			program: func(t *topology.Topology) {
				topology.Aggregate(topology.Source(t, "in", str, str), windows.Spec{Assigner: tum}, windows.Count[string](), serde.Int64(),
					topology.Named("agg"), topology.QueryableValue("agg-store", str, serde.Int64()))
			},
			want: []string{`aggregate operator "agg": option QueryableValue does not apply (only Process and ProcessTimed)`},
		},
		{
			name: "stores on repartition",
			program: func(t *topology.Topology) {
				topology.To(topology.Repartition(topology.Source(t, "in", str, str), topology.Named("r"), topology.Stores("x")), "out")
			},
			want: []string{`repartition operator "r": option Stores does not apply (only Process and ProcessTimed)`},
		},
		{
			name: "watermarks on combine",
			program: func(t *topology.Topology) {
				c := topology.Combine(topology.Source(t, "in", str, str), tum, windows.Count[string](), topology.Named("comb"), wm)
				topology.To(topology.WithSerdes(c, str, serde.Int64()), "out")
			},
			want: []string{`combine operator "comb": option WithWatermarks does not apply (only Source)`},
		},
		{
			name: "aggregate over a checked invalid assigner",
			program: func(t *topology.Topology) {
				topology.Aggregate(topology.Source(t, "in", str, str), windows.Spec{Assigner: windows.Checked(windows.Tumbling(0))},
					windows.Count[string](), serde.Int64(), topology.Named("agg"))
			},
			want: []string{`aggregate "agg": windows: invalid spec: Tumbling.size: must be positive, got 0s`},
		},
		{
			name: "combine over a checked invalid assigner",
			program: func(t *topology.Topology) {
				c := topology.Combine(topology.Source(t, "in", str, str), windows.Checked(windows.Hopping(time.Second, 3*time.Second)),
					windows.Count[string](), topology.Named("comb"))
				topology.To(topology.WithSerdes(c, str, serde.Int64()), "out")
			},
			want: []string{`combine "comb": windows: invalid spec: Hopping.size: must be a multiple of advance 3s, got 1s`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := topology.New()
			tc.program(top)
			p, err := top.Build("app")
			if err == nil {
				t.Fatalf("Build succeeded, want an error:\n%s", p)
			}
			if !errors.Is(err, topology.ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			var errs []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			} else {
				errs = []error{err}
			}
			if len(errs) != len(tc.want) {
				t.Errorf("got %d errors, want %d:\n%v", len(errs), len(tc.want), err)
			}
		})
	}
}
