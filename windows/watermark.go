package windows

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"
)

// Unknown is the watermark of an input that has told nothing yet: no
// record (or, for a repartition partition, not every upstream task has
// reported). It is smaller than every event time, so it holds back the
// minimum, and no window closes at it.
const Unknown int64 = math.MinInt64

// PartitionKey names one input partition of a task.
type PartitionKey struct {
	Topic     string
	Partition int32
}

func (p PartitionKey) String() string { return p.Topic + "/" + strconv.Itoa(int(p.Partition)) }

// Strategy turns the maximum event time seen on a partition into the
// partition's watermark. Build one with BoundedOutOfOrderness or
// Monotonous; the zero Strategy is Monotonous.
type Strategy struct{ bound time.Duration }

// BoundedOutOfOrderness expects records at most d older than the newest
// one seen: watermark = max event time - d. d must be >= 0 and whole
// milliseconds (checked by NewTracker).
func BoundedOutOfOrderness(d time.Duration) Strategy { return Strategy{bound: d} }

// Monotonous expects event times that never decrease: watermark = max
// event time. Records older than the watermark are late.
func Monotonous() Strategy { return Strategy{} }

// Bound returns the out-of-orderness bound (0 for Monotonous).
func (s Strategy) Bound() time.Duration { return s.bound }

// Watermark returns the watermark for a maximum event time (Unknown for
// Unknown).
func (s Strategy) Watermark(maxEventTime int64) int64 {
	b := s.bound.Milliseconds()
	if maxEventTime < Unknown+b {
		return Unknown
	}
	return maxEventTime - b
}

// TrackerOpt configures a Tracker.
type TrackerOpt interface{ apply(*trackerCfg) }

type trackerCfg struct {
	idleTimeout     time.Duration
	advanceWhenIdle bool
}

// DefaultIdleTimeout is the default of IdleTimeout.
const DefaultIdleTimeout = 30 * time.Second

func defaultTrackerCfg() trackerCfg { return trackerCfg{idleTimeout: DefaultIdleTimeout} }

type idleTimeoutOpt time.Duration

func (o idleTimeoutOpt) apply(c *trackerCfg) { c.idleTimeout = time.Duration(o) }

// IdleTimeout sets how long a caught-up partition must be quiet (no
// record, measured from the later of its last record and the moment it
// caught up) before it drops out of the task's minimum. Default
// DefaultIdleTimeout (30s); 0 disables idleness; negative is invalid.
func IdleTimeout(d time.Duration) TrackerOpt { return idleTimeoutOpt(d) }

type advanceWhenIdleOpt bool

func (o advanceWhenIdleOpt) apply(c *trackerCfg) { c.advanceWhenIdle = bool(o) }

// AdvanceWhenIdle, when on, lets the watermark advance with wall-clock time
// while every partition is idle: watermark = (max partition watermark when
// they all went idle) + (time since they all went idle), so the last
// windows close even though no more data arrives. Records that arrive
// later may then be late. Default off. It never advances an Unknown
// watermark.
func AdvanceWhenIdle(on bool) TrackerOpt { return advanceWhenIdleOpt(on) }

// Tracker computes a task's watermark from per-partition watermarks. See
// "Watermarks" in the package documentation.
//
// A Tracker is not safe for concurrent use: the engine calls it only from
// the goroutine that runs the task. Every method that takes now uses it as
// the processing-time clock; now must not go backwards.
type Tracker struct {
	strategy Strategy
	cfg      trackerCfg
	parts    map[PartitionKey]*partition
	current  int64
	// last is the partition part returned last: a task's records come
	// in runs from one partition, and hashing the key per record was 6%
	// of a passthrough's CPU.
	last    *partition
	lastKey PartitionKey

	allIdle   bool // every partition was idle at the last Current
	idleBase  int64
	idleSince time.Time
}

type partition struct {
	maxEvent   int64
	wm         int64 // monotone
	caughtUp   bool
	quietSince time.Time // later of the last record and the last caught-up transition

	// Repartition partitions (watermark from control records).
	repartition       bool
	upstreamTasks     int
	upstream          map[string]upstreamState
	upstreamIdle      bool // every upstream task said idle, and no record since
	upstreamIdleSince time.Time
}

type upstreamState struct {
	wm   int64
	idle bool
}

// NewTracker returns a Tracker with no partitions; its watermark is
// Unknown.
func NewTracker(s Strategy, opts ...TrackerOpt) (*Tracker, error) {
	c := defaultTrackerCfg()
	for _, o := range opts {
		o.apply(&c)
	}
	if s.bound < 0 || s.bound%time.Millisecond != 0 {
		return nil, specErr("BoundedOutOfOrderness", "must be >= 0 and whole milliseconds, got %v", s.bound)
	}
	if c.idleTimeout < 0 {
		return nil, specErr("IdleTimeout", "must be >= 0, got %v", c.idleTimeout)
	}
	return &Tracker{strategy: s, cfg: c, parts: make(map[PartitionKey]*partition), current: Unknown}, nil
}

func (t *Tracker) part(p PartitionKey) *partition {
	if t.last != nil && t.lastKey == p {
		return t.last
	}
	pt := t.parts[p]
	if pt == nil {
		pt = &partition{maxEvent: Unknown, wm: Unknown}
		t.parts[p] = pt
	}
	t.last, t.lastKey = pt, p
	return pt
}

// Add starts tracking p (a no-op if tracked). Its watermark is Unknown
// until it sees a record, and it is not idle before it is caught up.
func (t *Tracker) Add(p PartitionKey) { t.part(p) }

// AddRepartition starts tracking p as a partition of a repartition topic
// fed by upstreamTasks upstream tasks: its watermark comes only from
// control records (ObserveControl), and is Unknown until each of the
// upstreamTasks tasks has reported. upstreamTasks must be >= 1.
func (t *Tracker) AddRepartition(p PartitionKey, upstreamTasks int) error {
	if upstreamTasks < 1 {
		return specErr("AddRepartition.upstreamTasks", "must be >= 1, got %d", upstreamTasks)
	}
	pt := t.part(p)
	pt.repartition = true
	pt.upstreamTasks = upstreamTasks
	if pt.upstream == nil {
		pt.upstream = make(map[string]upstreamState, upstreamTasks)
	}
	return nil
}

// Remove stops tracking p (revoked). The task watermark does not go back.
func (t *Tracker) Remove(p PartitionKey) {
	delete(t.parts, p)
	t.last = nil
}

// Seed raises p's watermark to at least wm (adding p if needed), to
// restore the watermarks of a checkpoint when a task starts.
func (t *Tracker) Seed(p PartitionKey, wm int64) {
	pt := t.part(p)
	pt.wm = max(pt.wm, wm)
}

// SeedUpstream raises what upstream task said p's watermark is to at least
// wm (making p a repartition partition if needed), to restore a
// checkpoint's view of each upstream task when a task starts: an upstream
// task that restarted with no watermark of its own (it announces Unknown
// until it reads new input) then holds nothing back. The partition's own
// watermark moves with the next control record.
func (t *Tracker) SeedUpstream(p PartitionKey, task string, wm int64) {
	pt := t.part(p)
	pt.repartition = true
	if pt.upstream == nil {
		pt.upstream = make(map[string]upstreamState)
	}
	u, ok := pt.upstream[task]
	if !ok || wm > u.wm {
		u.wm = wm
	}
	pt.upstream[task] = u
}

// Observe records a data record with eventTime on p at processing time
// now (adding p if needed). The record ends p's idleness. On a repartition
// partition the event time does not move the watermark (control records
// do).
func (t *Tracker) Observe(p PartitionKey, eventTime int64, now time.Time) {
	pt := t.part(p)
	if now.After(pt.quietSince) {
		pt.quietSince = now
	}
	pt.upstreamIdle = false
	if pt.repartition || eventTime <= pt.maxEvent {
		return
	}
	pt.maxEvent = eventTime
	if wm := t.strategy.Watermark(eventTime); wm > pt.wm {
		pt.wm = wm
	}
}

// SetCaughtUp says whether the consumer position of p has reached p's high
// watermark (adding p if needed). Idleness is measured from the later of
// the last record and the last transition to caught up.
func (t *Tracker) SetCaughtUp(p PartitionKey, caughtUp bool, now time.Time) {
	pt := t.part(p)
	if caughtUp && !pt.caughtUp && now.After(pt.quietSince) {
		pt.quietSince = now
	}
	pt.caughtUp = caughtUp
}

// ObserveControl records a watermark control record read from p at
// processing time now. p becomes a repartition partition if it was not
// (with c.UpstreamTasks upstream tasks); the upstream task count of the
// latest control record wins. It returns an error wrapping
// ErrInvalidControl if c is invalid, and then changes nothing.
func (t *Tracker) ObserveControl(p PartitionKey, c ControlRecord, now time.Time) error {
	if err := c.Validate(); err != nil {
		return err
	}
	pt := t.part(p)
	pt.repartition = true
	pt.upstreamTasks = int(c.UpstreamTasks)
	if pt.upstream == nil {
		pt.upstream = make(map[string]upstreamState, pt.upstreamTasks)
	}
	u, ok := pt.upstream[c.UpstreamTask]
	if !ok || c.Watermark > u.wm {
		u.wm = c.Watermark
	}
	u.idle = c.Idle
	pt.upstream[c.UpstreamTask] = u

	if len(pt.upstream) < pt.upstreamTasks {
		return nil // Unknown until every upstream task has reported
	}
	cand, anyActive := int64(math.MaxInt64), false
	maxAll := Unknown
	for _, u := range pt.upstream {
		maxAll = max(maxAll, u.wm)
		if !u.idle {
			anyActive = true
			cand = min(cand, u.wm)
		}
	}
	if !anyActive {
		cand = maxAll
		if !pt.upstreamIdle {
			pt.upstreamIdle, pt.upstreamIdleSince = true, now
		}
	} else {
		pt.upstreamIdle = false
	}
	pt.wm = max(pt.wm, cand)
	return nil
}

// idle reports whether pt is idle at now, and since when.
func (t *Tracker) idle(pt *partition, now time.Time) (bool, time.Time) {
	if pt.repartition && pt.upstreamIdle {
		return true, pt.upstreamIdleSince
	}
	if pt.repartition && len(pt.upstream) >= pt.upstreamTasks {
		// Every upstream task reports: its controls say exactly how far
		// the partition is, so quietness is no evidence of idleness.
		return false, time.Time{}
	}
	if t.cfg.idleTimeout <= 0 || !pt.caughtUp {
		return false, time.Time{}
	}
	since := pt.quietSince.Add(t.cfg.idleTimeout)
	if now.Before(since) {
		return false, time.Time{}
	}
	return true, since
}

// Current returns the task watermark at processing time now: the minimum
// over non-idle partitions; if every partition is idle, the maximum over
// them (plus the wall-clock advance with AdvanceWhenIdle). It never
// decreases, and is Unknown until every non-idle partition has a
// watermark. With no partitions it keeps its last value.
func (t *Tracker) Current(now time.Time) int64 {
	if len(t.parts) == 0 {
		return t.current
	}
	minActive, anyActive := int64(math.MaxInt64), false
	maxAll := Unknown
	var since time.Time
	for _, pt := range t.parts {
		idle, s := t.idle(pt, now)
		if !idle {
			anyActive = true
			minActive = min(minActive, pt.wm)
			continue
		}
		maxAll = max(maxAll, pt.wm)
		if s.After(since) {
			since = s
		}
	}
	cand := minActive
	if anyActive {
		t.allIdle = false
	} else {
		cand = maxAll
		if !t.allIdle || !since.Equal(t.idleSince) {
			t.allIdle, t.idleBase, t.idleSince = true, max(maxAll, t.current), since
		}
		if t.cfg.advanceWhenIdle && t.idleBase != Unknown && now.After(t.idleSince) {
			cand = max(cand, satAdd(t.idleBase, now.Sub(t.idleSince).Milliseconds()))
		}
	}
	t.current = max(t.current, cand)
	return t.current
}

// Idle reports whether every tracked partition is idle at now (false with
// no partitions). An upstream task puts it in its control records.
func (t *Tracker) Idle(now time.Time) bool {
	if len(t.parts) == 0 {
		return false
	}
	for _, pt := range t.parts {
		if idle, _ := t.idle(pt, now); !idle {
			return false
		}
	}
	return true
}

// Control returns the control record this task (id taskID of a
// sub-topology with taskCount tasks) writes to the repartition partitions
// it feeds: its Current and Idle at now.
func (t *Tracker) Control(taskID string, taskCount int, now time.Time) ControlRecord {
	return ControlRecord{
		Version:       ControlVersion,
		UpstreamTask:  taskID,
		UpstreamTasks: uint32(max(taskCount, 0)),
		Watermark:     t.Current(now),
		Idle:          t.Idle(now),
	}
}

// PartitionStatus is a snapshot of one partition, for checkpoints and the
// HTTP API.
type PartitionStatus struct {
	Partition   PartitionKey
	Watermark   int64
	CaughtUp    bool
	Idle        bool
	Repartition bool
	// Upstream is, on a repartition partition, the watermark each upstream
	// task announced last (the highest it announced), by task id.
	Upstream map[string]int64
}

// Partitions returns the status of every tracked partition at now, sorted
// by topic and partition.
func (t *Tracker) Partitions(now time.Time) []PartitionStatus {
	out := make([]PartitionStatus, 0, len(t.parts))
	for p, pt := range t.parts {
		idle, _ := t.idle(pt, now)
		st := PartitionStatus{Partition: p, Watermark: pt.wm, CaughtUp: pt.caughtUp, Idle: idle, Repartition: pt.repartition}
		if len(pt.upstream) > 0 {
			st.Upstream = make(map[string]int64, len(pt.upstream))
			for id, u := range pt.upstream {
				st.Upstream[id] = u.wm
			}
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b PartitionStatus) int {
		if c := cmp.Compare(a.Partition.Topic, b.Partition.Topic); c != 0 {
			return c
		}
		return cmp.Compare(a.Partition.Partition, b.Partition.Partition)
	})
	return out
}
