package state

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkPeakRSS writes WEIR_RSS_KEYS (default 1M) distinct small keys (16-byte keys,
// 16-byte values) through a Task with the default 256 MiB MemoryBudget,
// checkpointing every 10k writes or when Full, and reports the process's
// peak resident set (VmHWM) and the peak of its anonymous part (RssAnon,
// sampled every 50ms), as metrics. It is a measurement for BENCHMARKS.md;
// run it alone, in its own process, once:
//
//	WEIR_RSS_KEYS=5000000 go test -run '^$' -bench PeakRSS -benchtime 1x ./state/
//
// WEIR_RSS_DIR puts the database on a given directory instead of a
// temporary one.
func BenchmarkPeakRSS(b *testing.B) {
	t := b
	n, _ := strconv.Atoi(os.Getenv("WEIR_RSS_KEYS"))
	if n <= 0 {
		n = 1_000_000
	}
	dir := os.Getenv("WEIR_RSS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	var (
		mu      sync.Mutex
		maxAnon int64
		stop    = make(chan struct{})
		stopped = make(chan struct{})
	)
	go func() {
		defer close(stopped)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			st := procStatus(t)
			mu.Lock()
			maxAnon = max(maxAnon, st["RssAnon"])
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	db := openDir(t, dir) // DefaultConfig: MemoryBudget 256 MiB
	task := db.Task("0_0")
	s := task.Store("s")
	start := time.Now()
	var key []byte
	val := make([]byte, 16)
	var cps, forced int
	for i := range n {
		key = fmt.Appendf(key[:0], "key-%012d", i)
		copy(val, key[4:])
		if err := s.Put(key, val); err != nil {
			t.Fatal(err)
		}
		full := task.Full()
		if full || (i+1)%10_000 == 0 {
			if full {
				forced++
			}
			cps++
			if err := task.Apply(Checkpoint{ID: uint64(cps)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := task.Apply(Checkpoint{ID: uint64(cps + 1)}); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	// Read a sample back so the figure includes reads through the caches.
	for i := 0; i < n; i += max(1, n/100_000) {
		key = fmt.Appendf(key[:0], "key-%012d", i)
		if _, err := s.Get(key); err != nil {
			t.Fatalf("Get(%s): %v", key, err)
		}
	}
	close(stop)
	<-stopped
	st := procStatus(t)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if p := os.Getenv("WEIR_RSS_HEAPPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var disk int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			disk += fi.Size()
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	b.ReportMetric(float64(st["VmHWM"]>>20), "VmHWM-MiB")
	b.ReportMetric(float64(maxAnon>>20), "peak-RssAnon-MiB")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "keys/s")
	t.Logf("keys=%d elapsed=%v keys/s=%.0f checkpoints=%d forced=%d", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), cps, forced)
	t.Logf("VmHWM=%d MiB VmRSS=%d MiB RssAnon=%d MiB (peak sampled %d MiB) RssFile=%d MiB disk=%d MiB",
		st["VmHWM"]>>20, st["VmRSS"]>>20, st["RssAnon"]>>20, maxAnon>>20, st["RssFile"]>>20, disk>>20)
	t.Logf("Go heap: HeapAlloc=%d MiB HeapInuse=%d MiB HeapIdle-Released=%d MiB Sys=%d MiB NumGC=%d",
		ms.HeapAlloc>>20, ms.HeapInuse>>20, (ms.HeapIdle-ms.HeapReleased)>>20, ms.Sys>>20, ms.NumGC)
}

// procStatus returns the kB fields of /proc/self/status, in bytes.
func procStatus(t testing.TB) map[string]int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		f := strings.Fields(rest)
		if !ok || len(f) != 2 || f[1] != "kB" {
			continue
		}
		v, _ := strconv.ParseInt(f[0], 10, 64)
		out[name] = v << 10
	}
	return out
}
