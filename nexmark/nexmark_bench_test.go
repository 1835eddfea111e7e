package nexmark

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
)

// go test ./nexmark/ -run '^$' -bench . -benchmem

func BenchmarkGenerate(b *testing.B) {
	g, _ := NewGenerator(DefaultConfig())
	buf := make([]byte, 0, 1024)
	var n int64
	b.ReportAllocs()
	for b.Loop() {
		buf = g.AppendJSON(buf[:0], n)
		n++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecode(b *testing.B) {
	g, _ := NewGenerator(DefaultConfig())
	var bids, all [][]byte
	for n := range int64(5000) {
		v := g.AppendJSON(nil, n)
		all = append(all, v)
		if Type(n) == BidEvent {
			bids = append(bids, v)
		}
	}
	for _, c := range []struct {
		name string
		in   [][]byte
	}{{"bid", bids}, {"mix", all}} {
		b.Run(c.name+"/codec", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := Codec().Decode(c.in[i%len(c.in)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(c.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				var e Event
				if err := jsonUnmarshal(c.in[i%len(c.in)], &e); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func BenchmarkEncodeBid(b *testing.B) {
	g, _ := NewGenerator(DefaultConfig())
	var bids []Bid
	for n := range int64(5000) {
		if e := g.Event(n); e.Bid != nil {
			bids = append(bids, *e.Bid)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := BidCodec().Encode(bids[i%len(bids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "bids/s")
}

// BenchmarkTask drives one task of a query through Task.Process per
// record, with Task.Advance every 1000 records (a batch boundary), over
// in-memory stores: the per-record cost of the operators, serdes and
// window state, without Kafka or Badger. Queries with a repartition run
// only their first sub-topology's task, except q7 whose first
// sub-topology holds the windowed aggregate; repartition records are
// discarded.
func BenchmarkTask(b *testing.B) {
	g, _ := NewGenerator(DefaultConfig())
	const n = 100_000
	in := make([][]byte, n)
	fill := func(from int64) {
		for i := range in {
			in[i] = g.AppendJSON(in[i][:0], from+int64(i))
		}
	}
	for _, q := range []string{"q0", "q1", "q2", "q5", "q7", "q11"} {
		b.Run(q, func(b *testing.B) {
			top, err := Topology(q, QueryConfig{Input: "in", Output: "out"})
			if err != nil {
				b.Fatal(err)
			}
			plan, err := top.Build("bench")
			if err != nil {
				b.Fatal(err)
			}
			stores := make(map[string]*state.MemStore)
			var produced int
			task, err := plan.Subtopologies[0].NewTask(topology.TaskEnv{
				AppID:      "bench",
				Task:       topology.TaskID{Subtopology: 0, Partition: 0},
				Produce:    func(*kgo.Record) error { produced++; return nil },
				Partitions: func(string) (int32, error) { return 8, nil },
				Store: func(name string) (state.Store, error) {
					if stores[name] == nil {
						stores[name] = state.NewMemStore()
					}
					return stores[name], nil
				},
				Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				b.Fatal(err)
			}
			rec := &kgo.Record{Topic: "in"}
			now := time.Now()
			fill(0)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// The next events (event time moves on, so windows
				// keep closing), generated off the clock.
				if i > 0 && i%n == 0 {
					b.StopTimer()
					fill(int64(i))
					b.StartTimer()
				}
				rec.Value, rec.Offset = in[i%n], int64(i)
				if err := task.Process(rec); err != nil {
					b.Fatal(err)
				}
				if i++; i%1000 == 0 {
					if _, err := task.Advance(now); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			_ = fmt.Sprint(produced)
		})
	}
}
