// Package cliutil holds what the commands of weir's CLI share: flag parsing
// with WEIR_* environment defaults, the engine's flags, the usage error that
// makes a command exit 2. Package app (the CLI) and internal/benchcmd (the
// processor binary's bench and gen commands) use it.
package cliutil

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/engine"
)

// UsageError marks an error as bad usage: the command exits 2, not 1.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }

// Parse parses flags, taking defaults from WEIR_* environment variables.
func Parse(fs *flag.FlagSet, args []string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := "WEIR_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return UsageError{Err: err}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		return UsageError{Err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	return nil
}

// NewLogger returns a text logger to w at the --log-level level.
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, UsageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), nil
}

// EngineFlags registers the flags of an engine.Config.
func EngineFlags(fs *flag.FlagSet, cfg *engine.Config) (brokers, logLevel *string) {
	brokers = fs.String("brokers", "", "comma-separated seed brokers, host:port (required)")
	fs.StringVar(&cfg.AppID, "app-id", "", "application id: the consumer group and internal-topic prefix; processes with the same id share the work (required)")
	fs.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "address for /healthz, /readyz, /metrics and the JSON API; empty disables it")
	fs.DurationVar(&cfg.CommitInterval, "commit-interval", cfg.CommitInterval, "time between checkpoints")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", cfg.SessionTimeout, "consumer group session timeout")
	fs.Func("on-error", "what to do with a record that fails to decode or process: dlq, skip or fail (default dlq)", func(s string) error {
		cfg.OnError = engine.ErrorPolicy(s)
		return nil
	})
	fs.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "directory of this process's local state; each process needs its own, and a restart on the same one replays only the changelog tail")
	fs.Func("state-memory-mb", "memory budget of local state in MiB: Badger memtables and caches, task write caches (default 256)", func(s string) error {
		mb, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		cfg.StateMemory = mb << 20
		return nil
	})
	fs.IntVar(&cfg.StandbyReplicas, "standby-replicas", cfg.StandbyReplicas, "how many other processes keep a warm copy of each stateful task, so a failover replays only a short tail")
	fs.DurationVar(&cfg.StateCleanupDelay, "state-cleanup-delay", cfg.StateCleanupDelay, "how long to keep the local state of a task this process no longer owns")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "a caught-up input partition quiet this long stops holding the watermark back (0 = never)")
	fs.BoolVar(&cfg.AdvanceWhenIdle, "advance-when-idle", cfg.AdvanceWhenIdle, "when every input of a task is idle, advance its watermark with the wall clock so the last windows close")
	fs.BoolVar(&cfg.AllowStateLoss, "allow-state-loss", cfg.AllowStateLoss, "start even if the topology drops state (a store, its changelog, a repartition topic) the application kept when it last ran, e.g. after renaming an operator; without it such a start is refused")
	fs.Func("guarantee", "processing guarantee: exactly_once or at_least_once (default exactly_once)", func(s string) error {
		cfg.Guarantee = engine.Guarantee(s)
		return nil
	})
	logLevel = fs.String("log-level", "info", "log level: debug, info, warn or error")
	return brokers, logLevel
}

// SplitList splits a comma-separated list, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// StartCPUProfile starts writing a CPU profile to path; stop ends it.
func StartCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// WaitTimeout is how long commands wait for something to come up.
const WaitTimeout = 30 * time.Second

// CreateTopic creates topic with partitions on broker.
func CreateTopic(ctx context.Context, broker, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, WaitTimeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %q: %w", topic, err)
	}
	return nil
}
