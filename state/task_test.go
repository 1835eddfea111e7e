package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
)

func TestReadYourWrites(t *testing.T) {
	db := openMem(t)
	task := db.Task("0_0")
	a, b := task.Store("a"), task.Store("b")

	wantAbsent(t, a, "k")
	mustPut(t, a, "k", "v1")
	wantGet(t, a, "k", "v1")
	wantAbsent(t, b, "k") // stores are separate
	mustPut(t, a, "k", "v2")
	wantGet(t, a, "k", "v2")
	mustDelete(t, a, "k")
	wantAbsent(t, a, "k")

	// Put copies its arguments.
	key, val := []byte("x"), []byte("orig")
	if err := a.Put(key, val); err != nil {
		t.Fatal(err)
	}
	copy(val, "XXXX")
	key[0] = 'y'
	wantGet(t, a, "x", "orig")
	wantAbsent(t, a, "y")

	// Store returns the same view for the same name.
	wantGet(t, task.Store("a"), "x", "orig")
}

func TestDiscardRestoresCommittedView(t *testing.T) {
	db := openMem(t)
	task := db.Task("0_0")
	s := task.Store("s")
	mustPut(t, s, "k1", "c1")
	mustPut(t, s, "k3", "c3")
	if err := task.Apply(Checkpoint{ID: 1}); err != nil {
		t.Fatal(err)
	}

	mustPut(t, s, "k1", "d1") // overwrite committed
	mustPut(t, s, "k2", "d2") // new key
	mustDelete(t, s, "k3")    // delete committed
	wantStrings(t, "scan before discard", scanAll(t, s, ""), []string{"k1=d1", "k2=d2"})

	task.Discard()
	if got := task.DirtyBytes(); got != 0 {
		t.Fatalf("DirtyBytes after Discard = %d, want 0", got)
	}
	if d := dirtyOf(t, task); len(d) != 0 {
		t.Fatalf("dirty after Discard: %v", d)
	}
	wantGet(t, s, "k1", "c1")
	wantAbsent(t, s, "k2")
	wantGet(t, s, "k3", "c3")
	wantStrings(t, "scan after discard", scanAll(t, s, ""), []string{"k1=c1", "k3=c3"})
}

func TestForEachDirtySorted(t *testing.T) {
	db := openMem(t)
	task := db.Task("0_0")
	mustPut(t, task.Store("zeta"), "b", "1")
	mustPut(t, task.Store("alpha"), "z", "2")
	mustPut(t, task.Store("zeta"), "a", "3")
	mustDelete(t, task.Store("alpha"), "c")
	mustPut(t, task.Store("alpha"), "a", "4")
	mustPut(t, task.Store("alpha"), "a", "5") // overwrite: one entry

	got := dirtyOf(t, task)
	want := []dirtyRec{
		{"alpha", "a", "5", false},
		{"alpha", "c", "", true},
		{"alpha", "z", "2", false},
		{"zeta", "a", "3", false},
		{"zeta", "b", "1", false},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ForEachDirty:\n got  %v\n want %v", got, want)
	}

	stop := errors.New("stop")
	n := 0
	err := task.ForEachDirty(func(string, []byte, []byte, bool) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("ForEachDirty with failing fn: err %v after %d calls, want stop after 1", err, n)
	}
}

func TestApplyDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	cp := Checkpoint{
		ID:         7,
		Inputs:     []Offset{{Topic: "in", Partition: 3, Offset: 1200}},
		Changelogs: map[string]int64{"counts": 88, "other": 0},
		Watermarks: []Watermark{{Topic: "in", Partition: 3, Millis: 1_700_000_000_000}},
	}

	db := openDir(t, dir)
	task := db.Task("1_3")
	s := task.Store("counts")
	mustPut(t, s, "a", "1")
	mustPut(t, s, "b", "2")
	if err := task.Apply(cp); err != nil {
		t.Fatal(err)
	}
	if task.DirtyBytes() != 0 || len(dirtyOf(t, task)) != 0 {
		t.Fatalf("dirty set not empty after Apply")
	}
	// Dirty writes after the last Apply are not durable.
	mustPut(t, s, "c", "3")
	mustDelete(t, s, "a")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Get([]byte("a")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}

	db2 := openDir(t, dir)
	ids, err := db2.TaskIDs()
	if err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "TaskIDs", ids, []string{"1_3"})
	task2 := db2.Task("1_3")
	got, ok, err := task2.Checkpoint()
	if err != nil || !ok {
		t.Fatalf("Checkpoint: %v %v", ok, err)
	}
	if !bytes.Equal(got.Encode(), cp.Encode()) || got.Changelogs["counts"] != 88 {
		t.Fatalf("Checkpoint = %+v, want %+v", got, cp)
	}
	s2 := task2.Store("counts")
	wantStrings(t, "state after reopen", scanAll(t, s2, ""), []string{"a=1", "b=2"})

	// No checkpoint for a task that never applied one.
	if _, ok, err := db2.Task("9_9").Checkpoint(); ok || err != nil {
		t.Fatalf("Checkpoint of new task: %v %v, want false nil", ok, err)
	}
}

func TestApplySplitsOversizedBatch(t *testing.T) {
	// 16 MiB budget: 1 MiB memtables, so one Badger transaction holds
	// about 150 KiB. Write ~600 KiB without heeding Full.
	var logs lockedBuffer
	dir := t.TempDir()
	db := openDir(t, dir, func(c *Config) {
		c.MemoryBudget = MinMemoryBudget
		c.TaskCacheBytes = MinMemoryBudget
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	task := db.Task("0_0")
	s := task.Store("s")
	val := strings.Repeat("v", 100)
	const n = 5000
	for i := range n {
		mustPut(t, s, fmt.Sprintf("k%05d", i), val)
	}
	if !task.Full() {
		t.Fatalf("Full() = false with %d dirty bytes; dirty limit %d", task.DirtyBytes(), db.dirtyLimit)
	}
	if err := task.Apply(Checkpoint{ID: 1}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "applied in several") {
		t.Fatalf("no split warning logged; logs: %s", logs.String())
	}
	db.Close()

	db2 := openDir(t, dir)
	task2 := db2.Task("0_0")
	if cp, ok, err := task2.Checkpoint(); err != nil || !ok || cp.ID != 1 {
		t.Fatalf("Checkpoint = %+v %v %v", cp, ok, err)
	}
	count := 0
	if err := task2.Store("s").Scan(nil, func(k, v []byte) error {
		if want := fmt.Sprintf("k%05d", count); string(k) != want || string(v) != val {
			return fmt.Errorf("entry %d = %q, want %q", count, k, want)
		}
		count++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Fatalf("%d entries after reopen, want %d", count, n)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestScanMerge(t *testing.T) {
	db := openMem(t)
	task := db.Task("0_0")
	s := task.Store("s")
	for _, k := range []string{"a", "b", "c", "d", "pa", "pb", "pc", "q"} {
		mustPut(t, s, k, "c-"+k)
	}
	mustPut(t, task.Store("other"), "pz", "elsewhere") // must not appear
	if err := task.Apply(Checkpoint{ID: 1}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "b", "d-b")   // replaces committed
	mustDelete(t, s, "c")       // hides committed
	mustPut(t, s, "bb", "d-bb") // cache-only, between committed keys
	mustPut(t, s, "0", "d-0")   // cache-only, before all
	mustPut(t, s, "z", "d-z")   // cache-only, after all
	mustDelete(t, s, "pa")
	mustPut(t, s, "pab", "d-pab")
	mustDelete(t, s, "nope") // delete of an absent key

	cases := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"0=d-0", "a=c-a", "b=d-b", "bb=d-bb", "d=c-d", "pab=d-pab", "pb=c-pb", "pc=c-pc", "q=c-q", "z=d-z"}},
		{"b", []string{"b=d-b", "bb=d-bb"}},
		{"c", nil},
		{"p", []string{"pab=d-pab", "pb=c-pb", "pc=c-pc"}},
		{"pa", []string{"pab=d-pab"}},
		{"z", []string{"z=d-z"}},
		{"zz", nil},
	}
	for _, tc := range cases {
		wantStrings(t, fmt.Sprintf("Scan(%q)", tc.prefix), scanAll(t, s, tc.prefix), tc.want)
	}

	// ScanFrom starts at start (inclusive).
	var got []string
	if err := s.(FromScanner).ScanFrom([]byte("p"), []byte("pb"), func(k, v []byte) error {
		got = append(got, string(k))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "ScanFrom(p, pb)", got, []string{"pb", "pc"})

	// An error from fn stops the scan and is returned unchanged.
	stop := errors.New("stop")
	n := 0
	if err := s.Scan(nil, func(k, v []byte) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("Scan with failing fn: %v after %d calls", err, n)
	}
	// Writing from fn is refused rather than read stale.
	err := s.Scan(nil, func(k, v []byte) error { return s.Put([]byte("new-key"), nil) })
	if err == nil || !strings.Contains(err.Error(), "wrote to the store") {
		t.Fatalf("Scan with writing fn: %v", err)
	}
}

// TestCacheAgainstModel runs random operations against a task store and
// against a model (committed map + dirty map) and compares every read.
func TestCacheAgainstModel(t *testing.T) {
	db := openMem(t, func(c *Config) { c.TaskCacheBytes = 4 << 10 }) // small: exercises eviction
	task := db.Task("3_1")
	s := task.Store("m")
	committed := map[string]string{}
	dirty := map[string]*string{}
	view := func() map[string]string {
		m := maps(committed)
		for k, v := range dirty {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = *v
			}
		}
		return m
	}
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() string { return fmt.Sprintf("k%02d", rng.IntN(60)) }
	for step := range 5000 {
		switch op := rng.IntN(100); {
		case op < 40:
			k, v := key(), fmt.Sprintf("v%d", step)
			mustPut(t, s, k, v)
			dirty[k] = &v
		case op < 55:
			k := key()
			mustDelete(t, s, k)
			dirty[k] = nil
		case op < 80:
			k := key()
			if v, ok := view()[k]; ok {
				wantGet(t, s, k, v)
			} else {
				wantAbsent(t, s, k)
			}
		case op < 90:
			prefix := fmt.Sprintf("k%d", rng.IntN(6))
			var want []string
			for k, v := range view() {
				if strings.HasPrefix(k, prefix) {
					want = append(want, k+"="+v)
				}
			}
			sort.Strings(want)
			wantStrings(t, fmt.Sprintf("step %d Scan(%q)", step, prefix), scanAll(t, s, prefix), want)
		case op < 97:
			if err := task.Apply(Checkpoint{ID: uint64(step)}); err != nil {
				t.Fatal(err)
			}
			committed = view()
			clear(dirty)
		default:
			task.Discard()
			clear(dirty)
		}
		if task.dirtyBytes+task.cleanBytes > db.cfg.TaskCacheBytes && task.cleanBytes > 0 {
			t.Fatalf("step %d: clean cache %d + dirty %d over budget %d", step, task.cleanBytes, task.dirtyBytes, db.cfg.TaskCacheBytes)
		}
	}
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestDropTaskLeavesNeighbour(t *testing.T) {
	db := openMem(t)
	for _, id := range []string{"0_1", "0_10", "0_2", "1_1"} {
		task := db.Task(id)
		mustPut(t, task.Store("s"), "k", "v-"+id)
		mustPut(t, task.Store("s1"), "k", "w-"+id)
		if err := task.Apply(Checkpoint{ID: 1}); err != nil {
			t.Fatal(err)
		}
	}
	old := db.Task("0_1")
	if err := db.DropTask("0_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Store("s").Get([]byte("k")); !errors.Is(err, ErrTaskDropped) {
		t.Fatalf("Get on dropped task: %v, want ErrTaskDropped", err)
	}
	if err := old.Apply(Checkpoint{ID: 2}); !errors.Is(err, ErrTaskDropped) {
		t.Fatalf("Apply on dropped task: %v, want ErrTaskDropped", err)
	}
	ids, err := db.TaskIDs()
	if err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "TaskIDs", ids, []string{"0_2", "1_1", "0_10"}) // key order: length first

	fresh := db.Task("0_1")
	wantAbsent(t, fresh.Store("s"), "k")
	if _, ok, _ := fresh.Checkpoint(); ok {
		t.Fatal("dropped task still has a checkpoint")
	}
	for _, id := range []string{"0_10", "0_2", "1_1"} {
		task := db.Task(id)
		wantGet(t, task.Store("s"), "k", "v-"+id)
		wantGet(t, task.Store("s1"), "k", "w-"+id)
	}
	// Store names are length-prefixed too: "s" does not see "s1".
	wantStrings(t, "store s of 0_10", scanAll(t, db.Task("0_10").Store("s"), ""), []string{"k=v-0_10"})
}

func TestTaskReplacedByNewerTask(t *testing.T) {
	db := openMem(t)
	first := db.Task("0_0")
	second := db.Task("0_0")
	if err := first.Store("s").Put([]byte("k"), nil); !errors.Is(err, ErrTaskDropped) {
		t.Fatalf("Put on replaced task: %v", err)
	}
	if err := second.Store("s").Put([]byte("k"), nil); err != nil {
		t.Fatal(err)
	}
}

func TestRestore(t *testing.T) {
	db := openMem(t)
	task := db.Task("0_4")
	s := task.Store("s")
	mustPut(t, s, "a", "old")
	mustPut(t, s, "gone", "x")
	if err := task.Apply(Checkpoint{ID: 1, Changelogs: map[string]int64{"s": 2}}); err != nil {
		t.Fatal(err)
	}
	wantGet(t, s, "a", "old") // now in the clean cache

	mustPut(t, s, "dirty", "d")
	if err := task.Restore(nil, Checkpoint{}); !errors.Is(err, ErrDirty) {
		t.Fatalf("Restore with dirty writes: %v, want ErrDirty", err)
	}
	task.Discard()

	entries := []Entry{
		{Store: "s", Key: []byte("a"), Value: []byte("new")},
		{Store: "s", Key: []byte("gone"), Deleted: true},
		{Store: "t", Key: []byte("b"), Value: []byte("2")},
	}
	cp := Checkpoint{ID: 1, Changelogs: map[string]int64{"s": 10, "t": 1}}
	if err := task.Restore(entries, cp); err != nil {
		t.Fatal(err)
	}
	if d := dirtyOf(t, task); len(d) != 0 {
		t.Fatalf("Restore left dirty writes: %v", d)
	}
	wantGet(t, s, "a", "new") // clean cache entry was invalidated
	wantAbsent(t, s, "gone")
	wantGet(t, task.Store("t"), "b", "2")
	got, ok, err := task.Checkpoint()
	if err != nil || !ok || got.Changelogs["s"] != 10 || got.Changelogs["t"] != 1 {
		t.Fatalf("Checkpoint after Restore = %+v %v %v", got, ok, err)
	}
}

func TestFullAtBudget(t *testing.T) {
	const budget = 10_000
	db := openMem(t, func(c *Config) { c.TaskCacheBytes = budget })
	task := db.Task("0_0")
	s := task.Store("s")
	// Each entry: prefix (01 03 "0_0" 01 01 "s" = 8 bytes) + 5-byte key
	// + 100-byte value + 112 overhead = 225 bytes.
	const per = 8 + 5 + 100 + entryOverhead
	val := strings.Repeat("v", 100)
	for i := range budget / per { // 44 entries: 9900 bytes
		mustPut(t, s, fmt.Sprintf("k%04d", i), val)
		if task.Full() {
			t.Fatalf("Full after %d entries (%d bytes)", i+1, task.DirtyBytes())
		}
	}
	if got, want := task.DirtyBytes(), int64(budget/per*per); got != want {
		t.Fatalf("DirtyBytes = %d, want %d", got, want)
	}
	// Overwriting a key with an equal-size value does not grow the set.
	mustPut(t, s, "k0000", strings.Repeat("w", 100))
	if task.Full() {
		t.Fatal("Full after overwrite")
	}
	mustPut(t, s, "k9999", val)
	if !task.Full() {
		t.Fatalf("not Full at %d bytes, budget %d", task.DirtyBytes(), budget)
	}
	if err := task.Apply(Checkpoint{ID: 1}); err != nil {
		t.Fatal(err)
	}
	if task.Full() || task.DirtyBytes() != 0 {
		t.Fatalf("after Apply: Full %v, DirtyBytes %d", task.Full(), task.DirtyBytes())
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want []string // substrings, one per reported problem
	}{
		{"default with dir", Config{Dir: "/x"}, nil},
		{"in memory", Config{InMemory: true}, nil},
		{"no dir", Config{}, []string{"Dir is empty"}},
		{"both", Config{Dir: "/x", InMemory: true}, []string{"clear Dir"}},
		{"small budget", Config{Dir: "/x", MemoryBudget: 1 << 20}, []string{"MemoryBudget is 1048576"}},
		{"negative cache", Config{Dir: "/x", TaskCacheBytes: -1}, []string{"TaskCacheBytes is -1"}},
		{"cache over budget", Config{Dir: "/x", TaskCacheBytes: DefaultMemoryBudget + 1}, []string{"exceeds MemoryBudget"}},
		{"everything", Config{MemoryBudget: -5, TaskCacheBytes: -1}, []string{"Dir is empty", "MemoryBudget is -5", "TaskCacheBytes is -1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("Validate reported %d problems, want %d: %v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) {
					t.Fatalf("problem %d = %q, want it to mention %q", i, lines[i], w)
				}
			}
		})
	}
	if _, err := Open(Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Open(Config{}) = %v", err)
	}
}

func TestResolveSizes(t *testing.T) {
	r := Config{InMemory: true}.resolve()
	if r.MemoryBudget != 256<<20 || r.TaskCacheBytes != 8<<20 || r.memTable != 16<<20 ||
		r.blockCache != 32<<20 || r.indexCache != 16<<20 {
		t.Fatalf("resolved sizes: %+v", r)
	}
	r = Config{InMemory: true, MemoryBudget: MinMemoryBudget}.resolve()
	if r.TaskCacheBytes != MinTaskCacheBytes || r.memTable != 1<<20 {
		t.Fatalf("resolved small sizes: %+v", r)
	}
}

func TestFormatVersionChecked(t *testing.T) {
	dir := t.TempDir()
	db := openDir(t, dir)
	if err := db.bdb.Update(func(txn *badger.Txn) error { return txn.Set(formatKey, []byte{99}) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	cfg := DefaultConfig()
	cfg.Dir, cfg.Logger = dir, quietLogger()
	if _, err := Open(cfg); !errors.Is(err, ErrFormat) {
		t.Fatalf("Open of format 99: %v, want ErrFormat", err)
	}
}

func TestBadgerLoggerLevels(t *testing.T) {
	var recs []slog.Level
	h := recordHandler{fn: func(r slog.Record) { recs = append(recs, r.Level) }}
	l := badgerLogger{slog.New(h)}
	l.Errorf("e %d\n", 1)
	l.Warningf("w")
	l.Infof("i")
	l.Debugf("d")
	want := []slog.Level{slog.LevelError, slog.LevelWarn, slog.LevelDebug, slog.LevelDebug}
	if !slices.Equal(recs, want) {
		t.Fatalf("levels %v, want %v", recs, want)
	}
}

type recordHandler struct{ fn func(slog.Record) }

func (h recordHandler) Enabled(context.Context, slog.Level) bool      { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error { h.fn(r); return nil }
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler            { return h }
func (h recordHandler) WithGroup(string) slog.Handler                 { return h }
