package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrorPolicy says what happens to a record that cannot be decoded or whose
// user function returns an error.
type ErrorPolicy string

const (
	// OnErrorDLQ produces the original record to "<app>-dlq" with headers
	// saying why and where from (cut to fit the broker: see
	// topology.DeadLetter), and goes on. The default.
	OnErrorDLQ ErrorPolicy = "dlq"
	// OnErrorSkip counts and logs the record, and goes on.
	OnErrorSkip ErrorPolicy = "skip"
	// OnErrorFail stops the engine with the error.
	OnErrorFail ErrorPolicy = "fail"
)

// Guarantee is the processing guarantee.
type Guarantee string

const (
	// ExactlyOnce makes every checkpoint one Kafka transaction: outputs,
	// changelog records and consumed offsets commit together or not at
	// all, and local state is applied only after the commit. Readers must
	// read with isolation.level=read_committed.
	ExactlyOnce Guarantee = "exactly_once"
	// AtLeastOnce commits consumed offsets after the outputs are
	// acknowledged, without transactions: faster, but a crash repeats the
	// output (and state updates) since the last commit.
	AtLeastOnce Guarantee = "at_least_once"
)

// Config configures an Engine. Start from DefaultConfig; Validate reports
// every problem at once.
type Config struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string
	// AppID is the consumer group id and the prefix of internal topics.
	// Required.
	AppID string
	// Guarantee. Default ExactlyOnce.
	Guarantee Guarantee
	// CommitInterval is the time between checkpoints (the commit point).
	// Default 100ms.
	CommitInterval time.Duration
	// OnError is the policy for bad records. Default OnErrorDLQ.
	OnError ErrorPolicy
	// HTTPAddr serves /healthz, /readyz, /metrics and the JSON API.
	// Default "127.0.0.1:0" (a free loopback port, logged at start);
	// "" disables the server.
	HTTPAddr string
	// SessionTimeout is the consumer group session timeout: how long a
	// silent process keeps its partitions. Default 10s.
	SessionTimeout time.Duration
	// MaxPollRecords bounds the records handed to tasks between two
	// rebalance/commit opportunities. Default 10000.
	MaxPollRecords int
	// MaxBufferedRecords bounds produced records not yet acknowledged;
	// when full, processing (and so fetching) waits: backpressure.
	// Default 100000.
	MaxBufferedRecords int
	// StateDir is the directory of the process's local state (one Badger
	// database). Each process needs its own; a restarted process given
	// the same directory replays only the changelog tail. Default
	// "weir-state". Unused by stateless topologies.
	StateDir string
	// StateMemory is the memory budget of local state in bytes (Badger
	// memtables and caches, task write caches). Default 256 MiB.
	StateMemory int64
	// StateCleanupDelay is how long the local state of a task this
	// process no longer owns is kept for a quick return. Default 10m.
	StateCleanupDelay time.Duration
	// StandbyReplicas is how many other processes keep a warm copy of
	// each stateful task by tailing its changelogs, so that a failover
	// replays only a short tail. Default 0.
	StandbyReplicas int
	// IdleTimeout is how long a caught-up input partition may be quiet
	// before it stops holding the task's watermark back. Default 30s;
	// 0 disables idleness.
	IdleTimeout time.Duration
	// AdvanceWhenIdle advances the watermark with the wall clock when
	// every input of a task is idle, so the last windows close. Default
	// false.
	AdvanceWhenIdle bool
	// AllowStateLoss lets the engine start a topology that drops state
	// the application kept when it last ran (a store, its changelog or a
	// repartition topic is gone from the plan, usually because an
	// operator was renamed). Without it Run refuses with
	// ErrStateOrphaned, listing that state. Default false.
	AllowStateLoss bool
	// ClientOpts are extra franz-go options (TLS, SASL, ...), applied
	// after weir's own.
	ClientOpts []kgo.Opt
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default set; Brokers and AppID
// still need values.
func DefaultConfig() Config {
	return Config{
		Guarantee:          ExactlyOnce,
		CommitInterval:     100 * time.Millisecond,
		OnError:            OnErrorDLQ,
		HTTPAddr:           "127.0.0.1:0",
		SessionTimeout:     10 * time.Second,
		MaxPollRecords:     10000,
		MaxBufferedRecords: 100000,
		IdleTimeout:        30 * time.Second,
		StateDir:           "weir-state",
		StateMemory:        256 << 20,
		StateCleanupDelay:  10 * time.Minute,
	}
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("engine: "+format, args...)) }
	if len(c.Brokers) == 0 {
		bad("no brokers: pass --brokers host:port (e.g. the address printed by 'processor dev-broker')")
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad("broker %q: want host:port", b)
		}
	}
	if c.AppID == "" {
		bad("no application id: pass --app-id NAME; processes with the same id share the work")
	}
	switch c.Guarantee {
	case ExactlyOnce, AtLeastOnce:
	default:
		bad("guarantee %q: want %q or %q", c.Guarantee, ExactlyOnce, AtLeastOnce)
	}
	switch c.OnError {
	case OnErrorDLQ, OnErrorSkip, OnErrorFail:
	default:
		bad("on-error %q: want dlq, skip or fail", c.OnError)
	}
	if c.CommitInterval < time.Millisecond {
		bad("commit interval %v: want at least 1ms", c.CommitInterval)
	}
	if c.Guarantee == ExactlyOnce && c.CommitInterval > 3*time.Minute {
		bad("commit interval %v: exactly-once wants at most 3m (a transaction stays open for an interval and brokers cap transactions at 15m)", c.CommitInterval)
	}
	if c.SessionTimeout < time.Second {
		bad("session timeout %v: want at least 1s", c.SessionTimeout)
	}
	if c.IdleTimeout < 0 {
		bad("idle timeout %v: want 0 (off) or more", c.IdleTimeout)
	}
	if c.StateDir == "" {
		bad("no state directory: pass --state-dir DIR")
	}
	if c.StateMemory < 16<<20 {
		bad("state memory %d bytes: want at least 16 MiB", c.StateMemory)
	}
	if c.StandbyReplicas < 0 {
		bad("standby replicas %d: want 0 or more", c.StandbyReplicas)
	}
	if c.StateCleanupDelay < 0 {
		bad("state cleanup delay %v: want 0 or more", c.StateCleanupDelay)
	}
	if c.MaxPollRecords < 1 {
		bad("max poll records %d: want at least 1", c.MaxPollRecords)
	}
	if c.MaxBufferedRecords < 1 {
		bad("max buffered records %d: want at least 1", c.MaxBufferedRecords)
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			bad("http address %q: want host:port, e.g. 127.0.0.1:8080", c.HTTPAddr)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}
