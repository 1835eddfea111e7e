package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// DevBrokerConfig configures a development broker.
type DevBrokerConfig struct {
	// Listen is the host:port to listen on. Default "127.0.0.1:9092";
	// port 0 picks a free port.
	Listen string
	// Advertise is the host:port clients are told to connect to. Default:
	// the address actually listened on. Set it when clients reach the
	// broker through another address (a container network).
	Advertise string
	// Partitions is the partition count of auto-created topics. Default 8.
	Partitions int
	// DataDir persists the broker's logs and offsets across restarts,
	// also after a kill: the next start aborts, with markers, the
	// transactions that were open (see datadir.go for what survives).
	// Default "": in memory only.
	DataDir string
	// Logger receives the broker's warnings and errors. Default
	// slog.Default().
	Logger *slog.Logger
	// CleanerInterval is how often the log cleaner tries to compact
	// topics with cleanup.policy=compact (and apply retention). Default
	// 15s; negative: never. It compacts only while no compacted
	// partition holds records of an open transaction (see cleaner.go).
	CleanerInterval time.Duration
}

// DevBroker is a single-node Kafka-protocol broker (franz-go's kfake) for
// local development, tests and the demo. It supports transactions, consumer
// groups and log compaction; it is not a production broker.
type DevBroker struct {
	c       *kfake.Cluster
	addr    string
	cl      *cleaner
	dataDir string
}

// kfakeOpts are the cluster options of a DevBroker; listen makes its one
// listener.
func kfakeOpts(cfg DevBrokerConfig, listen func(network string) (net.Listener, error)) []kfake.Opt {
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.WithLogger(slogLogger{cfg.Logger}),
		// kfake's own cleaner is off (its backoff is ~31 years): it
		// treats records of a transaction that is still open as a
		// key's newest value, so when that transaction aborts the
		// committed value is gone. Our cleaner (cleaner.go) runs
		// kfake's compaction only when no compacted partition has an
		// open transaction.
		// Development data is kept until the broker stops: records with
		// old event timestamps (replays, generators) must not vanish to
		// time-based retention mid-run.
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": kfakeCleanerOff, "log.retention.ms": "-1"}),
		// Short session timeouts make failover quick in development
		// and tests; Kafka's default minimum is 6s.
		kfake.GroupMinSessionTimeout(time.Second),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return listen(network) }),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	return opts
}

// StartDevBroker starts a broker and returns once it accepts connections.
func StartDevBroker(cfg DevBrokerConfig) (*DevBroker, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:9092"
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 8
	}
	if cfg.CleanerInterval == 0 {
		cfg.CleanerInterval = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var errs []error
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		errs = append(errs, fmt.Errorf("kafkaio: dev broker: listen address %q: want host:port: %w", cfg.Listen, err))
	}
	if cfg.Advertise != "" {
		if _, p, err := net.SplitHostPort(cfg.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("kafkaio: dev broker: advertise address %q: want host:port: %w", cfg.Advertise, err))
		} else if n, err := strconv.Atoi(p); err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("kafkaio: dev broker: advertise address %q: the port must be a positive number", cfg.Advertise))
		}
	}
	if cfg.Partitions < 1 {
		errs = append(errs, fmt.Errorf("kafkaio: dev broker: partitions %d: want at least 1", cfg.Partitions))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.DataDir != "" {
		if err := recoverDataDir(cfg); err != nil {
			return nil, fmt.Errorf("kafkaio: dev broker: %w", err)
		}
	}
	var listened string // the address the cleaner's client dials
	c, err := kfake.NewCluster(kfakeOpts(cfg, func(network string) (net.Listener, error) {
		ln, err := net.Listen(network, cfg.Listen)
		if err != nil {
			return nil, err
		}
		listened = ln.Addr().String()
		if cfg.Advertise == "" {
			return ln, nil
		}
		return advertised{ln, cfg.Advertise}, nil
	})...)
	if err != nil {
		if cfg.DataDir != "" {
			_ = os.Remove(runningFile(cfg.DataDir))
		}
		return nil, fmt.Errorf("kafkaio: dev broker: %w", err)
	}
	b := &DevBroker{c: c, addr: c.ListenAddrs()[0], dataDir: cfg.DataDir}
	cl, err := startCleaner(c, listened, cfg.CleanerInterval, cfg.Logger)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("kafkaio: dev broker: %w", err)
	}
	b.cl = cl
	return b, nil
}

// Addr returns the advertised host:port, the bootstrap address for clients.
func (b *DevBroker) Addr() string { return b.addr }

// Cluster returns the underlying kfake cluster (for fault injection in
// tests). Its Compact is kfake's unsafe cleaner (see cleaner.go): compact
// through the DevBroker's cleaner instead.
func (b *DevBroker) Cluster() *kfake.Cluster { return b.c }

// Close stops the broker. It is safe to call more than once.
func (b *DevBroker) Close() {
	b.cl.stop()
	b.c.Close()
	if b.dataDir != "" {
		// kfake saved its state: the next start needs no recovery.
		_ = os.Remove(runningFile(b.dataDir))
	}
}

// advertised reports a different address than the one it listens on: kfake
// advertises its listener's Addr in metadata.
type advertised struct {
	net.Listener
	addr string
}

func (a advertised) Addr() net.Addr { return advertisedAddr(a.addr) }

type advertisedAddr string

func (advertisedAddr) Network() string  { return "tcp" }
func (a advertisedAddr) String() string { return string(a) }

// slogLogger routes kfake's log lines to slog.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	var lv slog.Level
	switch level {
	case kfake.LogLevelError:
		lv = slog.LevelError
	case kfake.LogLevelWarn:
		lv = slog.LevelWarn
	case kfake.LogLevelInfo:
		lv = slog.LevelDebug // kfake's info is chatty for a dev broker
	default:
		lv = slog.LevelDebug - 4
	}
	if s.l.Enabled(context.Background(), lv) {
		s.l.Log(context.Background(), lv, "dev broker: "+fmt.Sprintf(msg, args...))
	}
}

// Compact runs the log cleaner now: it compacts topics with
// cleanup.policy=compact (and applies retention) if no partition of a
// compacted topic has an open transaction, and reports whether it ran (or
// found nothing written to a compacted topic since its last run).
func (b *DevBroker) Compact(ctx context.Context) (bool, error) { return b.cl.compact(ctx) }
