package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	// DataDir persists the broker's logs and offsets across restarts.
	// Default "": in memory only.
	DataDir string
	// Logger receives the broker's warnings and errors. Default
	// slog.Default().
	Logger *slog.Logger
}

// DevBroker is a single-node Kafka-protocol broker (franz-go's kfake) for
// local development, tests and the demo. It supports transactions, consumer
// groups and log compaction; it is not a production broker.
type DevBroker struct {
	c    *kfake.Cluster
	addr string
}

// StartDevBroker starts a broker and returns once it accepts connections.
func StartDevBroker(cfg DevBrokerConfig) (*DevBroker, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:9092"
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 8
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
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.WithLogger(slogLogger{cfg.Logger}),
		// kfake compacts only when the cleaner runs; its default backoff
		// is an hour, so changelog topics would never shrink.
		// Development data is kept until the broker stops: records with
		// old event timestamps (replays, generators) must not vanish to
		// time-based retention mid-run.
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "15000", "log.retention.ms": "-1"}),
		// Short session timeouts make failover quick in development
		// and tests; Kafka's default minimum is 6s.
		kfake.GroupMinSessionTimeout(time.Second),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			ln, err := net.Listen(network, cfg.Listen)
			if err != nil {
				return nil, err
			}
			if cfg.Advertise == "" {
				return ln, nil
			}
			return advertised{ln, cfg.Advertise}, nil
		}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: dev broker: %w", err)
	}
	return &DevBroker{c: c, addr: c.ListenAddrs()[0]}, nil
}

// Addr returns the advertised host:port, the bootstrap address for clients.
func (b *DevBroker) Addr() string { return b.addr }

// Cluster returns the underlying kfake cluster (for fault injection in
// tests).
func (b *DevBroker) Cluster() *kfake.Cluster { return b.c }

// Close stops the broker. It is safe to call more than once.
func (b *DevBroker) Close() { b.c.Close() }

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
