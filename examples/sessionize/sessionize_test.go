package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/serde/registry"
	"github.com/weirstream/weir/serde/registry/registrytest"
	"github.com/weirstream/weir/topologytest"
)

const (
	t0     = int64(1_700_000_000_000)
	minute = int64(60_000)
	parts  = 4
)

// setup starts a test registry, a writer serde (what a producer uses) and
// the topology with a decode-only serde of its own client, as main does.
func setup(t *testing.T) (*registrytest.Server, *topologytest.Driver, func(p int32, v PageView)) {
	t.Helper()
	reg := registrytest.NewServer()
	t.Cleanup(reg.Close)
	producerClient, _ := registry.New(reg.URL())
	writer, err := serde.AvroRegistryTyped(producerClient, serde.ValueSubject("page-views"), Schema, Mapping)
	if err != nil {
		t.Fatal(err)
	}
	appClient, _ := registry.New(reg.URL())
	reader, err := serde.AvroRegistryTyped(appClient, "", "", Mapping)
	if err != nil {
		t.Fatal(err)
	}
	top, err := Sessionize(DefaultConfig(), reader) // 30 min gap, 10s out of order
	if err != nil {
		t.Fatal(err)
	}
	d, err := topologytest.New(top, topologytest.AppID("sessions"), topologytest.Partitions(parts), topologytest.IdleTimeout(0))
	if err != nil {
		t.Fatal(err)
	}
	pipe := func(p int32, v PageView) {
		t.Helper()
		b, err := writer.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Pipe("page-views", p, []byte(v.User), b, v.TS); err != nil {
			t.Fatal(err)
		}
	}
	return reg, d, pipe
}

func sessions(t *testing.T, d *topologytest.Driver) []string {
	t.Helper()
	recs, err := topologytest.OutputOf(d, "sessions", serde.String(), serde.JSON[Session]())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		s := r.Value
		if s.User != r.Key {
			t.Errorf("session %+v keyed %q", s, r.Key)
		}
		out = append(out, fmt.Sprintf("%s %dm-%dm %d %s", s.User, (s.Start-t0)/minute, (s.LastView-t0)/minute, s.Views, strings.Join(s.Pages, ",")))
	}
	slices.Sort(out)
	return out
}

func TestSessionize(t *testing.T) {
	reg, d, pipe := setup(t)
	// ann: one session over three partitions (re-keyed by user), then a
	// second one after more than the gap.
	pipe(0, PageView{"ann", "/", t0})
	pipe(1, PageView{"ann", "/search", t0 + 10*minute})
	pipe(2, PageView{"ann", "/", t0 + 35*minute})
	pipe(0, PageView{"ann", "/cart", t0 + 120*minute})
	// bob: two views 50 minutes apart, then one between them read from
	// another partition (whose watermark is far behind): the three merge
	// into one session.
	pipe(3, PageView{"bob", "/a", t0 + 200*minute})
	pipe(3, PageView{"bob", "/c", t0 + 200*minute + 50*minute}) // a second session, for now
	pipe(1, PageView{"bob", "/b", t0 + 200*minute + 25*minute})
	if got := sessions(t, d); len(got) != 0 {
		t.Fatalf("sessions before the watermark passed them: %q", got)
	}
	// Far-future views on every partition close everything.
	for p := range int32(parts) {
		pipe(p, PageView{"~close", "/", t0 + 24*60*minute})
	}
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ann 0m-35m 3 /,/search",
		"ann 120m-120m 1 /cart",
		"bob 200m-250m 3 /a,/c,/b",
	}
	if got := sessions(t, d); !slices.Equal(got, want) {
		t.Fatalf("sessions = %q, want %q", got, want)
	}
	// The application's client fetched the writer's schema once, however
	// many records it decoded.
	if n := reg.Requests("GET /schemas/ids/{id}"); n != 1 {
		t.Errorf("%d schema fetches, want 1", n)
	}
}

// TestSessionizeBadInput: records that are not Avro in the wire format, or
// name an unknown schema id, go to the dead-letter topic.
func TestSessionizeBadInput(t *testing.T) {
	_, d, pipe := setup(t)
	pipe(0, PageView{"ann", "/", t0})
	for i, b := range [][]byte{
		[]byte(`{"user":"ann"}`),                             // JSON
		serde.AppendWire(nil, 42, []byte{2, 'a', 2, 'b', 2}), // unknown schema id
		serde.AppendWire(nil, 1, []byte{0xff}),               // bad body
	} {
		if err := d.Pipe("page-views", 0, []byte("ann"), b, t0+int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	dlq := d.DLQ()
	if len(dlq) != 3 {
		t.Fatalf("dlq = %v, want 3 records", dlq)
	}
	for i, r := range dlq {
		e, _ := r.Header(topologytest.HeaderError)
		if !strings.Contains(e, "avro") {
			t.Errorf("dlq record %d: error header %q", i, e)
		}
		if off, _ := r.Header(topologytest.HeaderSourceOffset); off != fmt.Sprint(i+1) {
			t.Errorf("dlq record %d: source offset %q", i, off)
		}
	}
}

func TestSessionizeConfig(t *testing.T) {
	if _, err := Sessionize(Config{Gap: 0}, nil); err == nil {
		t.Error("no serde accepted")
	}
	s, _ := serde.AvroTyped(Schema, Mapping)
	if _, err := Sessionize(Config{Input: "a", Output: "b", Gap: -time.Second}, s); err == nil {
		t.Error("negative gap accepted")
	}
}
