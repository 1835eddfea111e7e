package state

import (
	"errors"
	"fmt"
	"log/slog"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

const (
	// DefaultMemoryBudget is the default Config.MemoryBudget: 256 MiB.
	DefaultMemoryBudget int64 = 256 << 20
	// MinMemoryBudget is the smallest Config.MemoryBudget Validate accepts.
	MinMemoryBudget int64 = 16 << 20
	// MinTaskCacheBytes is the floor of the derived per-task cache budget.
	MinTaskCacheBytes int64 = 4 << 20

	// MaxKeyBytes is the largest Badger key (a store key with its task
	// and store prefix) a store holds: Badger's own limit.
	MaxKeyBytes = 65000
	// DefaultMaxValueBytes is the default Config.MaxValueBytes: 768 KiB.
	// A changelog record carries one key (at most MaxKeyBytes) and one
	// value plus a few bytes of framing, so values up to this size keep
	// it well under franz-go's default batch limit (1,000,012 bytes) and
	// Kafka's default message.max.bytes (1,048,588 bytes).
	DefaultMaxValueBytes = 768 << 10
)

// Config configures Open. Start from DefaultConfig. Open never modifies the
// Config it is given.
type Config struct {
	// Dir is the directory of the process's one Badger database. Required
	// unless InMemory is set. Default: "" (must be set).
	Dir string

	// InMemory keeps the database in memory only (Badger's InMemory mode),
	// for tests. Dir must be empty. Default: false.
	InMemory bool

	// MemoryBudget is the memory, in bytes, the process's state may use:
	// Badger's memtables, block cache and index cache, and the per-task
	// write caches are all sized from it (see doc.go, "Memory").
	// 0 means DefaultMemoryBudget (256 MiB); otherwise at least
	// MinMemoryBudget (16 MiB).
	MemoryBudget int64

	// TaskCacheBytes is the budget of each task's write cache (dirty
	// writes plus clean read cache). 0 derives it from MemoryBudget:
	// MemoryBudget/32, at least MinTaskCacheBytes (4 MiB); 8 MiB for the
	// default budget. It must not exceed MemoryBudget.
	TaskCacheBytes int64

	// MaxValueBytes is the largest value a store holds; a Put of a larger
	// value fails with a *SizeError (a bad record for the engine's error
	// policy). It bounds what one changelog record carries, so it must
	// stay below the broker's max message size minus MaxKeyBytes. 0 means
	// DefaultMaxValueBytes (768 KiB).
	MaxValueBytes int

	// Logger receives Badger's log lines (errors at error, warnings at
	// warn, info and debug at debug) and the package's own. Default:
	// slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default filled in except Dir.
func DefaultConfig() Config {
	return Config{MemoryBudget: DefaultMemoryBudget}
}

// Validate reports every problem of c at once (joined with errors.Join);
// each wraps ErrInvalidConfig and says what to change.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	switch {
	case !c.InMemory && c.Dir == "":
		bad("Dir is empty: set it to the directory for the Badger database, or set InMemory for tests")
	case c.InMemory && c.Dir != "":
		bad("Dir is %q and InMemory is set: clear Dir for an in-memory database, or unset InMemory", c.Dir)
	}
	if c.MemoryBudget < 0 || (c.MemoryBudget > 0 && c.MemoryBudget < MinMemoryBudget) {
		bad("MemoryBudget is %d bytes: set at least %d (16 MiB), or 0 for the default %d (256 MiB)",
			c.MemoryBudget, MinMemoryBudget, DefaultMemoryBudget)
	}
	budget := c.MemoryBudget
	if budget == 0 {
		budget = DefaultMemoryBudget
	}
	switch {
	case c.TaskCacheBytes < 0:
		bad("TaskCacheBytes is %d: set a positive byte count, or 0 to derive it from MemoryBudget", c.TaskCacheBytes)
	case c.TaskCacheBytes > budget:
		bad("TaskCacheBytes (%d) exceeds MemoryBudget (%d): lower it, or raise MemoryBudget", c.TaskCacheBytes, budget)
	}
	if c.MaxValueBytes < 0 || c.MaxValueBytes >= 1<<30 {
		bad("MaxValueBytes is %d: set a byte count below 1 GiB (Badger's value log file size), or 0 for the default %d (768 KiB)", c.MaxValueBytes, DefaultMaxValueBytes)
	}
	return errors.Join(errs...)
}

// resolved is a validated Config with defaults applied and the sizes
// derived from the memory budget.
type resolved struct {
	Config
	memTable   int64
	blockCache int64
	indexCache int64
}

func (c Config) resolve() resolved {
	r := resolved{Config: c}
	if r.MemoryBudget == 0 {
		r.MemoryBudget = DefaultMemoryBudget
	}
	if r.TaskCacheBytes == 0 {
		r.TaskCacheBytes = max(MinTaskCacheBytes, r.MemoryBudget/32)
		r.TaskCacheBytes = min(r.TaskCacheBytes, r.MemoryBudget)
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	r.memTable = min(max(r.MemoryBudget/16, 1<<20), 64<<20)
	r.blockCache = r.MemoryBudget / 8
	r.indexCache = r.MemoryBudget / 16
	if r.MaxValueBytes == 0 {
		r.MaxValueBytes = DefaultMaxValueBytes
	}
	if r.InMemory {
		// In memory, Badger refuses values above its value threshold.
		r.MaxValueBytes = min(r.MaxValueBytes, int(r.valueThreshold()))
	}
	return r
}

// valueThreshold is Badger's ValueThreshold: values at least this large
// go to the value log. Badger refuses one above its largest batch, which
// is 15% of the memtable.
func (r resolved) valueThreshold() int64 {
	maxBatch := r.memTable * 15 / 100
	return min(1<<20, maxBatch/2)
}

// badgerOptions maps the resolved config onto Badger's options. See doc.go,
// "Memory", for the budget arithmetic.
func (r resolved) badgerOptions() badger.Options {
	opts := badger.DefaultOptions(r.Dir)
	if r.InMemory {
		opts = badger.DefaultOptions("").WithInMemory(true)
	}
	// Compaction memory: every in-flight table builder holds about twice
	// its table size, plus compression buffers, and Badger runs up to
	// 8+splits builders per compaction. With the default size multiplier
	// of 2, tables (and builders) double per level as the data grows, so
	// keep every level's tables at BaseTableSize. Small state values gain
	// little from block compression, and it costs a goroutine pool and a
	// second buffer per builder: off.
	opts.TableSizeMultiplier = 1
	return opts.
		WithCompression(options.None).
		WithSyncWrites(false).
		WithDetectConflicts(false).
		WithNumVersionsToKeep(1).
		WithMetricsEnabled(false).
		WithMemTableSize(r.memTable).
		WithNumMemtables(2).
		WithBlockCacheSize(r.blockCache).
		WithIndexCacheSize(r.indexCache).
		WithNumCompactors(2).
		WithValueThreshold(r.valueThreshold()).
		WithLogger(badgerLogger{r.Logger.With("component", "badger")})
}
