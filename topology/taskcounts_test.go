package topology_test

import (
	"strings"
	"testing"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
)

// A repartitioning topology: the downstream sub-topology has as many tasks
// as the upstream one, whatever its own source would say; a source with no
// partitions leaves its sub-topologies without tasks, which is an error.
func TestTaskCounts(t *testing.T) {
	str := serde.String()
	p := mustBuild(t, func(top *topology.Topology) {
		s := topology.Source(top, "in", str, str)
		k := topology.SelectKey(s, func(_, v string) (string, error) { return v, nil }, str)
		topology.To(topology.Count(k, topology.Named("count")), "out")
	}, "app")
	for _, tc := range []struct {
		in   int32
		want []int32
		err  string
	}{
		{in: 8, want: []int32{8, 8}},
		{in: 3, want: []int32{3, 3}},
		{in: 0, err: "sub-topology 0 has no partitions"},
	} {
		got, err := p.TaskCounts(func(topic string) int32 {
			if topic != "in" {
				t.Fatalf("asked for the partitions of %q, an internal topic", topic)
			}
			return tc.in
		})
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("in=%d: err = %v, want %q", tc.in, err, tc.err)
			}
		case err != nil || len(got) != len(tc.want) || got[0] != tc.want[0] || got[1] != tc.want[1]:
			t.Errorf("in=%d: TaskCounts = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
