package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// UnknownTime is the time a Clock returns while it knows none: before the
// first watermark, or for the record time when no record is being
// processed. It equals windows.Unknown.
const UnknownTime int64 = math.MinInt64

// Clock tells typed handles with a TTL what time it is. *topology.Context
// is the Clock of a task: pass it to WithTTL.
//
// Threading: called from the task's goroutine only.
type Clock interface {
	// Timestamp returns the event time (epoch ms) of the record being
	// processed, or of the event-time timer firing; UnknownTime when
	// there is neither (a processing-time timer).
	Timestamp() int64
	// Watermark returns the task's event-time watermark (epoch ms), or
	// UnknownTime while it is unknown.
	Watermark() int64
	// ProcessingTime returns the wall clock.
	ProcessingTime() time.Time
}

// SweepScheduler is implemented by Clocks that sweep expired values:
// opening a handle with a TTL over a Store tells its Clock, if it is one,
// to sweep that Store (with a Sweeper in the TTL's domain). Scheduling the
// same Store and domain again must have no further effect.
// *topology.Context is one; it sweeps at every checkpoint.
//
// Threading: called from the task's goroutine only.
type SweepScheduler interface {
	ScheduleSweep(s Store, domain TimeDomain)
}

// TimeDomain says in which time a TTL is measured.
type TimeDomain uint8

const (
	// EventTime measures a TTL in event time: a write at the record's
	// timestamp, expiry against the watermark.
	EventTime TimeDomain = iota + 1
	// ProcessingTime measures a TTL in processing time (the wall clock).
	ProcessingTime
)

func (d TimeDomain) String() string {
	switch d {
	case EventTime:
		return "event-time"
	case ProcessingTime:
		return "processing-time"
	}
	return fmt.Sprintf("TimeDomain(%d)", uint8(d))
}

// TTL is a time to live, as Flink's StateTtlConfig: a value expires a
// duration after its last write (and, with RefreshOnRead, its last read),
// in event time or processing time. Build one with EventTimeTTL or
// ProcessingTimeTTL; the zero TTL is invalid.
type TTL struct {
	after         time.Duration
	domain        TimeDomain
	refreshOnRead bool
}

// EventTimeTTL is a TTL in event time: a value written while processing a
// record with timestamp t expires when the task's watermark reaches
// t + after (a write from a processing-time timer counts at the
// watermark). While the watermark is unknown nothing expires. Records out
// of order never shorten a value's life: a write keeps the later of the
// old and the new expiry.
func EventTimeTTL(after time.Duration) TTL { return TTL{after: after, domain: EventTime} }

// ProcessingTimeTTL is a TTL in processing time: a value written at wall
// clock time t expires at t + after.
func ProcessingTimeTTL(after time.Duration) TTL {
	return TTL{after: after, domain: ProcessingTime}
}

// RefreshOnRead returns the TTL that also restarts a value's life when a
// read finds it live (Flink's OnReadAndWrite; the default is
// OnCreateAndWrite). The refresh is a write: it reaches the changelog.
func (t TTL) RefreshOnRead() TTL { t.refreshOnRead = true; return t }

// After returns the TTL's duration.
func (t TTL) After() time.Duration { return t.after }

// Domain returns the time the TTL is measured in.
func (t TTL) Domain() TimeDomain { return t.domain }

// HandleOpt configures a typed handle.
type HandleOpt interface{ apply(*handleCfg) }

type handleOptFunc func(*handleCfg)

func (f handleOptFunc) apply(c *handleCfg) { f(c) }

// WithTTL makes values written through the handle expire as ttl says, by
// clock (in a topology: the task's *topology.Context). An expired value
// reads as absent and is deleted on that read (the delete reaches the
// changelog as a tombstone). If clock is a SweepScheduler, the handle's
// Store is scheduled for sweeping, so expired values nobody reads are
// deleted too. Default: no TTL. An invalid ttl (the zero TTL, a duration
// under a millisecond) or a nil clock makes every method of the handle
// return ErrInvalidTTL.
func WithTTL(ttl TTL, clock Clock) HandleOpt {
	return handleOptFunc(func(c *handleCfg) {
		var errs []error
		if ttl.after < time.Millisecond {
			errs = append(errs, fmt.Errorf("%w: duration %v, want at least 1ms", ErrInvalidTTL, ttl.after))
		}
		if ttl.domain != EventTime && ttl.domain != ProcessingTime {
			errs = append(errs, fmt.Errorf("%w: no time domain: build the TTL with EventTimeTTL or ProcessingTimeTTL", ErrInvalidTTL))
		}
		if clock == nil {
			errs = append(errs, fmt.Errorf("%w: clock is nil", ErrInvalidTTL))
		}
		if err := errors.Join(errs...); err != nil {
			c.err = err
			return
		}
		c.ttl, c.clock, c.hasTTL = ttl, clock, true
	})
}

// expiryTime returns the time expiries are judged against in domain d:
// the watermark in event time, the wall clock in processing time. ok is
// false while the watermark is unknown: then nothing is expired.
func expiryTime(clock Clock, d TimeDomain) (t int64, ok bool) {
	if d == EventTime {
		wm := clock.Watermark()
		return wm, wm != UnknownTime
	}
	return clock.ProcessingTime().UnixMilli(), true
}

// writeTime returns the time a write (or refresh) happens in domain d:
// the record's timestamp in event time (the watermark when there is no
// record), the wall clock in processing time. ok is false when event time
// knows neither.
func writeTime(clock Clock, d TimeDomain) (t int64, ok bool) {
	if d == ProcessingTime {
		return clock.ProcessingTime().UnixMilli(), true
	}
	if ts := clock.Timestamp(); ts != UnknownTime {
		return ts, true
	}
	if wm := clock.Watermark(); wm != UnknownTime {
		return wm, true
	}
	return 0, false
}

// satAdd returns a+b clamped to the int64 range.
func satAdd(a, b int64) int64 {
	s := a + b
	if b > 0 && s < a {
		return math.MaxInt64
	}
	if b < 0 && s > a {
		return math.MinInt64
	}
	return s
}

// Value encoding of every typed handle (doc.go, "Value encoding"):
//
//	0x00 payload                      no expiry
//	0x01 int64be(expiry ms) payload   expires when now >= expiry
const (
	tagPlain  byte = 0x00
	tagExpiry byte = 0x01
)

func appendEnvelope(dst []byte, expiry int64, hasExpiry bool, payload []byte) []byte {
	if hasExpiry {
		dst = append(dst, tagExpiry)
		dst = binary.BigEndian.AppendUint64(dst, uint64(expiry))
	} else {
		dst = append(dst, tagPlain)
	}
	return append(dst, payload...)
}

func decodeEnvelope(b []byte) (payload []byte, expiry int64, hasExpiry bool, err error) {
	if len(b) == 0 {
		return nil, 0, false, fmt.Errorf("%w: empty value", ErrBadValue)
	}
	switch b[0] {
	case tagPlain:
		return b[1:], 0, false, nil
	case tagExpiry:
		if len(b) < 9 {
			return nil, 0, false, fmt.Errorf("%w: %d-byte value with expiry tag", ErrBadValue, len(b))
		}
		return b[9:], int64(binary.BigEndian.Uint64(b[1:9])), true, nil
	}
	return nil, 0, false, fmt.Errorf("%w: unknown tag 0x%02x", ErrBadValue, b[0])
}

// Sweeper deletes expired handle values from a Store a bounded number of
// entries per call, resuming where the previous call stopped, so the
// engine can call it at every checkpoint. Its deletes are ordinary Store
// deletes: they reach the changelog as tombstones.
//
// Threading: used by the task's goroutine only, like its Store.
type Sweeper struct {
	s      Store
	domain TimeDomain
	clock  Clock
	cursor []byte // next key to examine; nil: the start
}

// NewSweeper returns a Sweeper over s, a store written by typed handles
// with a TTL in domain, that judges stored expiries by clock as the
// handles do (in event time, nothing expires while the watermark is
// unknown). Values without an expiry, and values not in the handle
// encoding, are kept.
func NewSweeper(s Store, domain TimeDomain, clock Clock) *Sweeper {
	return &Sweeper{s: s, domain: domain, clock: clock}
}

var errStopSweep = errors.New("state: sweep limit reached")

// Sweep examines at most limit entries from where the last call stopped
// (wrapping to the start after the last key) and deletes the expired ones.
// It returns how many it deleted. In event time with an unknown watermark
// it examines nothing. If s does not implement FromScanner, each call also
// reads (without counting) the keys before its cursor.
func (sw *Sweeper) Sweep(limit int) (deleted int, err error) {
	if sw.clock == nil || (sw.domain != EventTime && sw.domain != ProcessingTime) {
		return 0, fmt.Errorf("%w: sweeper needs a clock and a valid domain", ErrInvalidTTL)
	}
	t, known := expiryTime(sw.clock, sw.domain)
	if limit <= 0 || !known {
		return 0, nil
	}
	var (
		examined int
		last     []byte
		expired  [][]byte
		more     bool
	)
	visit := func(k, v []byte) error {
		if examined == limit {
			more = true
			return errStopSweep
		}
		examined++
		last = append(last[:0], k...)
		if _, exp, has, err := decodeEnvelope(v); err == nil && has && t >= exp {
			expired = append(expired, bytes.Clone(k))
		}
		return nil
	}
	if fs, ok := sw.s.(FromScanner); ok {
		err = fs.ScanFrom(nil, sw.cursor, visit)
	} else {
		err = sw.s.Scan(nil, func(k, v []byte) error {
			if bytes.Compare(k, sw.cursor) < 0 {
				return nil
			}
			return visit(k, v)
		})
	}
	if err != nil && !errors.Is(err, errStopSweep) {
		return 0, fmt.Errorf("state: sweep: %w", err)
	}
	for _, k := range expired {
		if err := sw.s.Delete(k); err != nil {
			return deleted, fmt.Errorf("state: sweep: %w", err)
		}
		deleted++
	}
	if more {
		sw.cursor = append(last, 0x00) // the smallest key after last
	} else {
		sw.cursor = nil
	}
	return deleted, nil
}
