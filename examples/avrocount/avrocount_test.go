package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/serde/registry"
	"github.com/weirstream/weir/serde/registry/registrytest"
	"github.com/weirstream/weir/topologytest"
)

const (
	base     = int64(1_700_000_000_000) // a multiple of the 10s window
	parts    = 4
	closer   = "~close"
	windowMs = 10_000
)

// click is one generated input record.
type click struct {
	Click
	part int32
}

// genClicks returns n clicks per partition by a few users over about a
// minute, each partition's timestamps advancing with jitter below the 2s
// out-of-orderness bound (so none is late), then one far-future click
// per partition by a user outside the oracle, which closes every window.
func genClicks(seed uint64, n int) []click {
	r := rand.New(rand.NewPCG(seed, seed))
	var cs []click
	for p := range int32(parts) {
		for i := range n {
			ts := base + int64(i)*60_000/int64(n) - r.Int64N(1500)
			cs = append(cs, click{Click{User: fmt.Sprintf("u%d", r.IntN(7)), Page: "/", TS: max(ts, base)}, p})
		}
	}
	for p := range int32(parts) {
		cs = append(cs, click{Click{User: closer, Page: "/", TS: base + 3_600_000}, p})
	}
	return cs
}

// oracle returns the expected results as "user start count", sorted.
func oracle(cs []click) []string {
	m := make(map[string]int)
	for _, c := range cs {
		if c.User != closer {
			m[fmt.Sprintf("%s %d", c.User, c.TS-c.TS%windowMs)]++
		}
	}
	var out []string
	for k, n := range m {
		out = append(out, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(out)
	return out
}

func format(rs []Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s %d %d", r.User, r.WindowStart, r.Count))
	}
	slices.Sort(out)
	return out
}

// writerSerde is what a producer uses: the schema registered under the
// topic's value subject.
func writerSerde(t *testing.T, reg *registrytest.Server, topic string) serde.Serde[Click] {
	t.Helper()
	c, err := registry.New(reg.URL())
	if err != nil {
		t.Fatal(err)
	}
	s, err := serde.AvroRegistryTyped(c, serde.ValueSubject(topic), Schema, Mapping)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readerSerde(t *testing.T, reg *registrytest.Server) serde.Serde[Click] {
	t.Helper()
	c, err := registry.New(reg.URL())
	if err != nil {
		t.Fatal(err)
	}
	s, err := serde.AvroRegistryTyped(c, "", "", Mapping)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAvroCountDriver runs the topology in memory.
func TestAvroCountDriver(t *testing.T) {
	reg := registrytest.NewServer()
	defer reg.Close()
	cfg := DefaultConfig()
	top, err := AvroCount(cfg, readerSerde(t, reg))
	if err != nil {
		t.Fatal(err)
	}
	d, err := topologytest.New(top, topologytest.AppID("avrocount"), topologytest.Partitions(parts), topologytest.IdleTimeout(0))
	if err != nil {
		t.Fatal(err)
	}
	w := writerSerde(t, reg, cfg.Input)
	cs := genClicks(1, 200)
	for _, c := range cs {
		b, err := w.Encode(c.Click)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Pipe(cfg.Input, c.part, nil, b, c.TS); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	recs, err := topologytest.OutputOf(d, cfg.Output, serde.String(), serde.JSON[Result]())
	if err != nil {
		t.Fatal(err)
	}
	var rs []Result
	for _, r := range recs {
		rs = append(rs, r.Value)
	}
	if got, want := format(rs), oracle(cs); !slices.Equal(got, want) {
		t.Fatalf("results (%d) = %q\nwant (%d) %q", len(got), got, len(want), want)
	}
	if n := len(d.Late()) + len(d.DLQ()); n != 0 {
		t.Errorf("%d late or dead-letter records", n)
	}
	if n := reg.Requests("GET /schemas/ids/{id}"); n != 1 {
		t.Errorf("%d schema fetches, want 1", n)
	}
}
