package topologytest

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/weirstream/weir/windows"
)

// ErrorPolicy says what happens to a record that cannot be decoded or whose
// user function fails: the engine's --on-error, with the same values.
type ErrorPolicy string

const (
	// OnErrorDLQ appends the original record to "<app>-dlq" with the
	// engine's headers (weir.error, weir.source.topic,
	// weir.source.partition, weir.source.offset), cut to fit as in the
	// engine (topology.DeadLetter). The default.
	OnErrorDLQ ErrorPolicy = "dlq"
	// OnErrorSkip drops the record (it is still listed by BadRecords).
	OnErrorSkip ErrorPolicy = "skip"
	// OnErrorFail makes the call that processed the record return the
	// error; the record stays unconsumed, as in an engine that stopped.
	OnErrorFail ErrorPolicy = "fail"
)

// DefaultStartTime is the driver's processing time when StartTime is not
// given: 2024-01-01T00:00:00Z.
var DefaultStartTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Opt configures a Driver.
type Opt interface{ apply(*cfg) }

type cfg struct {
	appID           string
	partitions      int32
	topicPartitions map[string]int32
	start           time.Time
	idleTimeout     time.Duration
	advanceWhenIdle bool
	onError         ErrorPolicy
	logger          *slog.Logger
}

func defaultCfg() cfg {
	return cfg{
		appID:           "test",
		partitions:      1,
		topicPartitions: make(map[string]int32),
		start:           DefaultStartTime,
		idleTimeout:     windows.DefaultIdleTimeout,
		onError:         OnErrorDLQ,
		logger:          slog.New(slog.DiscardHandler),
	}
}

func (c cfg) validate() error {
	var errs []error
	if c.partitions < 1 {
		errs = append(errs, fmt.Errorf("topologytest: Partitions(%d): want at least 1", c.partitions))
	}
	for t, n := range c.topicPartitions {
		if n < 1 {
			errs = append(errs, fmt.Errorf("topologytest: TopicPartitions(%q, %d): want at least 1", t, n))
		}
	}
	if c.idleTimeout < 0 {
		errs = append(errs, fmt.Errorf("topologytest: IdleTimeout(%v): want 0 (off) or more", c.idleTimeout))
	}
	switch c.onError {
	case OnErrorDLQ, OnErrorSkip, OnErrorFail:
	default:
		errs = append(errs, fmt.Errorf("topologytest: OnError(%q): want dlq, skip or fail", c.onError))
	}
	if c.logger == nil {
		errs = append(errs, errors.New("topologytest: Logger(nil)"))
	}
	return errors.Join(errs...)
}

type optFunc func(*cfg)

func (f optFunc) apply(c *cfg) { f(c) }

// AppID sets the application id, which names the internal topics
// ("<app>-<operator>-repartition", "<app>-<store>-changelog",
// "<app>-late", "<app>-dlq"). Default "test".
func AppID(id string) Opt { return optFunc(func(c *cfg) { c.appID = id }) }

// Partitions sets the partition count of every source topic without a
// TopicPartitions of its own. Default 1. The topology runs one task per
// partition of each sub-topology, as in the engine.
func Partitions(n int32) Opt { return optFunc(func(c *cfg) { c.partitions = n }) }

// TopicPartitions sets the partition count of one source or output topic.
// An output topic without one has as many partitions as the
// sub-topology writing it has tasks (what the engine creates).
func TopicPartitions(topic string, n int32) Opt {
	return optFunc(func(c *cfg) { c.topicPartitions[topic] = n })
}

// StartTime sets the processing-time clock's start. Default
// DefaultStartTime. The clock moves only with AdvanceTime.
func StartTime(t time.Time) Opt { return optFunc(func(c *cfg) { c.start = t }) }

// IdleTimeout is the engine's --idle-timeout: how long a caught-up input
// partition may be quiet (in processing time) before it stops holding the
// task's watermark back. Default 30s, the engine's default; 0 disables
// idleness.
func IdleTimeout(d time.Duration) Opt { return optFunc(func(c *cfg) { c.idleTimeout = d }) }

// AdvanceWhenIdle is the engine's --advance-when-idle: while every input
// of a task is idle, its watermark advances with processing time. Default
// false.
func AdvanceWhenIdle(on bool) Opt { return optFunc(func(c *cfg) { c.advanceWhenIdle = on }) }

// OnError sets the bad-record policy. Default OnErrorDLQ.
func OnError(p ErrorPolicy) Opt { return optFunc(func(c *cfg) { c.onError = p }) }

// Logger is handed to the tasks (Context.Logger). Default: discards.
func Logger(l *slog.Logger) Opt { return optFunc(func(c *cfg) { c.logger = l }) }
