package state

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/weirstream/weir/serde"
)

// benchKey writes key i of a keyspace as 16 bytes ("key-" + 12 digits).
func benchKey(dst []byte, i uint64) []byte {
	return fmt.Appendf(dst[:0], "key-%012d", i)
}

const (
	benchKeyspace = 200_000
	benchValueLen = 64
	// benchCheckpointEvery is the updates between checkpoints in the
	// cache benchmark (plus forced ones when Full).
	benchCheckpointEvery = 10_000
)

// BenchmarkUpdates compares updates through the task cache with a batched
// Apply per checkpoint (every 10k updates, or earlier when Full) against
// one Badger transaction per record, in the same run on the same
// disk-backed configuration. Keys are 16 bytes out of 200k, drawn
// uniformly or Zipf-distributed (s=1.1, hot keys as in most keyed
// aggregations); values 64 bytes. "put" writes blindly; "rmw" reads the
// current value first, as an aggregation does.
func BenchmarkUpdates(b *testing.B) {
	for _, dist := range []string{"uniform", "zipf"} {
		for _, rmw := range []bool{false, true} {
			mode := "put"
			if rmw {
				mode = "rmw"
			}
			b.Run(dist+"/"+mode+"/cache+apply", func(b *testing.B) { benchCache(b, dist, rmw) })
			b.Run(dist+"/"+mode+"/txn-per-record", func(b *testing.B) { benchTxnPerRecord(b, dist, rmw) })
		}
	}
}

// keyGen returns a generator of key indexes in [0, benchKeyspace).
func keyGen(dist string) func() uint64 {
	rng := rand.New(rand.NewPCG(1, 1))
	if dist == "zipf" {
		z := rand.NewZipf(rng, 1.1, 1, benchKeyspace-1)
		return z.Uint64
	}
	return func() uint64 { return rng.Uint64N(benchKeyspace) }
}

func benchCache(b *testing.B, dist string, rmw bool) {
	db := openDir(b, b.TempDir())
	task := db.Task("0_0")
	s := task.Store("counts")
	next := keyGen(dist)
	var kb []byte
	val := make([]byte, benchValueLen)
	var cps, forced uint64
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		kb = benchKey(kb, next())
		if rmw {
			if old, err := s.Get(kb); err == nil {
				copy(val, old)
			}
		}
		binary.BigEndian.PutUint64(val, uint64(i))
		if err := s.Put(kb, val); err != nil {
			b.Fatal(err)
		}
		full := task.Full()
		if full || (i+1)%benchCheckpointEvery == 0 {
			if full {
				forced++
			}
			cps++
			if err := task.Apply(Checkpoint{ID: cps}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := task.Apply(Checkpoint{ID: cps + 1}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
	b.ReportMetric(float64(forced), "forced-checkpoints")
}

func benchTxnPerRecord(b *testing.B, dist string, rmw bool) {
	db := openDir(b, b.TempDir())
	prefix := storePrefix("0_0", "counts")
	next := keyGen(dist)
	val := make([]byte, benchValueLen)
	var kb []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		kb = benchKey(kb, next())
		key := append(append(make([]byte, 0, len(prefix)+len(kb)), prefix...), kb...)
		err := db.bdb.Update(func(txn *badger.Txn) error {
			if rmw {
				if item, err := txn.Get(key); err == nil {
					if err := item.Value(func(v []byte) error { copy(val, v); return nil }); err != nil {
						return err
					}
				}
			}
			binary.BigEndian.PutUint64(val, uint64(i))
			return txn.Set(key, append([]byte(nil), val...))
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
}

// BenchmarkRestore measures Task.Restore of changelog entries (16-byte
// keys, 64-byte values) in batches of 10k, as ReadRange hands them over.
func BenchmarkRestore(b *testing.B) {
	const batch = 10_000
	db := openDir(b, b.TempDir())
	task := db.Task("0_0")
	entries := make([]Entry, batch)
	val := make([]byte, benchValueLen)
	for i := range entries {
		entries[i] = Entry{Store: "counts", Value: val}
	}
	var next uint64
	b.ResetTimer()
	start := time.Now()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		for i := range n {
			entries[i].Key = benchKey(make([]byte, 0, 16), next)
			next++
		}
		cp := Checkpoint{ID: 1, Changelogs: map[string]int64{"counts": int64(next)}}
		if err := task.Restore(entries[:n], cp); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "keys/s")
}

// BenchmarkSweep is the cost of one checkpoint's TTL sweep step
// (topology.SweepLimit = 1000 entries examined) over a committed
// disk-backed store of 200k live values: the work the engine adds per
// store and task at every checkpoint when nothing has expired.
func BenchmarkSweep(b *testing.B) {
	db := openDir(b, b.TempDir())
	task := db.Task("0_0")
	s := task.Store("ttl")
	clock := newFakeClock()
	clock.proc = 1
	v := NewValue(s, serde.Bytes(), WithTTL(ProcessingTimeTTL(time.Hour), clock))
	var kb []byte
	val := make([]byte, benchValueLen)
	for i := range uint64(benchKeyspace) {
		kb = benchKey(kb, i)
		if err := v.Set(kb, val); err != nil {
			b.Fatal(err)
		}
		if task.Full() {
			if err := task.Apply(Checkpoint{ID: i}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := task.Apply(Checkpoint{ID: benchKeyspace}); err != nil {
		b.Fatal(err)
	}
	sw := NewSweeper(s, ProcessingTime, clock)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if n, err := sw.Sweep(1000); n != 0 || err != nil {
			b.Fatalf("swept %d (%v)", n, err)
		}
	}
}
