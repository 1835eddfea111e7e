package windows

import (
	"strconv"
	"testing"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
)

// Benchmarks run over state.MemStore, so they measure the operator's own
// cost (key building, accumulator serde, indexes), not a real store's.
// Results are recorded in BENCHMARKS.md, section "Windows".

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte("key-" + strconv.Itoa(i))
	}
	return keys
}

// BenchmarkOperatorAdd adds in-order records over 1000 keys, 10 records per
// key per window; the watermark trails by 1s and Advance runs every 1000
// records, so windows open and close as in a steady stream.
func BenchmarkOperatorAdd(b *testing.B) {
	sum := Sum[int64]()
	unsliced := Sum[int64]()
	unsliced.Commutative = false // the baseline of sliced hopping windows
	hop4 := Spec{Assigner: mustAssigner(Hopping(10*time.Second, 2500*time.Millisecond))}
	cases := []struct {
		name string
		spec Spec
		agg  Aggregation[int64, int64]
	}{
		{"tumbling", Spec{Assigner: mustAssigner(Tumbling(10 * time.Second))}, sum},
		{"hopping-4", hop4, sum},
		{"hopping-4-unsliced", hop4, unsliced},
		{"session", Spec{Assigner: mustAssigner(Session(5 * time.Second))}, sum},
		{"count", Spec{Assigner: mustAssigner(CountWindows(10))}, sum},
		{"tumbling-early", Spec{Assigner: mustAssigner(Tumbling(10 * time.Second)), Emit: EmitEarly}, sum},
	}
	keys := benchKeys(1000)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			op, err := NewOperator(c.spec, state.NewMemStore(), serde.Int64(), c.agg)
			if err != nil {
				b.Fatal(err)
			}
			emitted := 0
			emit := func(Result[int64]) error { emitted++; return nil }
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ts := int64(i) // 1000 records per ms of event time ... 1 record per key per ms
				if _, err := op.Add(keys[i%len(keys)], 1, ts, ts-1000); err != nil {
					b.Fatal(err)
				}
				if i%1000 == 999 {
					if err := op.Advance(ts-1000, emit); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			_ = emitted
		})
	}
}

// BenchmarkOperatorAdvance measures emitting and deleting closed windows:
// each iteration opens 1000 tumbling windows (one per key, timer stopped)
// and closes them with one Advance.
func BenchmarkOperatorAdvance(b *testing.B) {
	keys := benchKeys(1000)
	op, err := NewOperator(Spec{Assigner: mustAssigner(Tumbling(time.Second))}, state.NewMemStore(), serde.Int64(), Sum[int64]())
	if err != nil {
		b.Fatal(err)
	}
	emitted := 0
	emit := func(Result[int64]) error { emitted++; return nil }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ts := int64(i) * 1000
		for _, k := range keys {
			if _, err := op.Add(k, 1, ts, ts-1); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if err := op.Advance(ts+1000, emit); err != nil {
			b.Fatal(err)
		}
	}
	if emitted != b.N*len(keys) {
		b.Fatalf("emitted %d, want %d", emitted, b.N*len(keys))
	}
	b.ReportMetric(float64(emitted)/b.Elapsed().Seconds(), "windows/s")
	b.ReportMetric(float64(len(keys)), "windows/op")
}

// BenchmarkTrackerObserve is the per-record watermark cost over 8 input
// partitions: Observe alone, and Observe followed by Current (what the
// engine does before handing a record to a windowed operator).
func BenchmarkTrackerObserve(b *testing.B) {
	for _, withCurrent := range []bool{false, true} {
		name := "observe"
		if withCurrent {
			name = "observe+current"
		}
		b.Run(name, func(b *testing.B) {
			tr, err := NewTracker(BoundedOutOfOrderness(time.Second), IdleTimeout(10*time.Second))
			if err != nil {
				b.Fatal(err)
			}
			parts := make([]PartitionKey, 8)
			for i := range parts {
				parts[i] = PartitionKey{Topic: "input", Partition: int32(i)}
				tr.Add(parts[i])
			}
			now := time.Unix(1_700_000_000, 0)
			var wm int64
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tr.Observe(parts[i&7], int64(i), now)
				if withCurrent {
					wm = tr.Current(now)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			_ = wm
		})
	}
}
