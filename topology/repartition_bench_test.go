package topology_test

import (
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
)

// BenchmarkRepartitionSink is the upstream half of a key change: decode,
// re-key, write to the repartition topic (the produce keeps nothing). It
// is what the origin header costs per repartitioned record.
func BenchmarkRepartitionSink(b *testing.B) {
	i64 := serde.Int64()
	top := topology.New()
	src := topology.Source(top, "bids", serde.Bytes(), serde.Bytes(), topology.Named("source"))
	byBidder := topology.SelectKey(src, func(_, v []byte) (int64, error) { return int64(binary.BigEndian.Uint64(v)), nil }, i64, topology.Named("by-bidder"))
	topology.To(topology.WithSerdes(topology.Count(byBidder, topology.Named("count")), i64, i64), "out", topology.Named("sink"))
	p, err := top.Build("app")
	if err != nil {
		b.Fatal(err)
	}
	var produced int
	task, err := p.Subtopologies[0].NewTask(topology.TaskEnv{
		AppID:      "app",
		Task:       topology.TaskID{Subtopology: 0, Partition: 3},
		Produce:    func(*kgo.Record) error { produced++; return nil },
		Partitions: func(string) (int32, error) { return 8, nil },
		Now:        func() time.Time { return time.UnixMilli(1_700_000_000_000) },
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]kgo.Record, 1024)
	for i := range recs {
		recs[i] = kgo.Record{Topic: "bids", Partition: 3, Value: binary.BigEndian.AppendUint64(nil, uint64(i%100)), Timestamp: time.UnixMilli(int64(i))}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := &recs[i%len(recs)]
		r.Offset = int64(1_000_000 + i)
		if err := task.Process(r); err != nil {
			b.Fatal(err)
		}
	}
	if produced == 0 {
		b.Fatal("nothing produced")
	}
}
