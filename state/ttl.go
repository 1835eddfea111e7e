package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Clock supplies the current time to typed handles with a TTL. Both
// methods return epoch milliseconds. The engine supplies the task's
// watermark as EventTime and the wall clock as ProcessingTime; tests
// supply their own.
//
// Threading: called from the task's goroutine only.
type Clock interface {
	EventTime() int64
	ProcessingTime() int64
}

// TimeDomain says which of a Clock's times a TTL is measured in.
type TimeDomain uint8

const (
	// EventTime measures a TTL against Clock.EventTime (the watermark).
	EventTime TimeDomain = iota + 1
	// ProcessingTime measures a TTL against Clock.ProcessingTime.
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

// TTL is a time to live: a value expires After its last write, measured in
// Domain. Expiry is refreshed by every write (create and update), not by
// reads.
type TTL struct {
	After  time.Duration
	Domain TimeDomain
}

// HandleOpt configures a typed handle.
type HandleOpt interface{ apply(*handleCfg) }

type handleOptFunc func(*handleCfg)

func (f handleOptFunc) apply(c *handleCfg) { f(c) }

// WithTTL makes values written through the handle expire ttl.After after
// their last write, by clock's time in ttl.Domain. An expired value reads
// as absent and is deleted on that read (the delete reaches the changelog
// as a tombstone); a Sweeper deletes expired values nobody reads.
// Default: no TTL. An invalid ttl (After not positive, unknown Domain) or a
// nil clock makes every method of the handle return ErrInvalidTTL.
func WithTTL(ttl TTL, clock Clock) HandleOpt {
	return handleOptFunc(func(c *handleCfg) {
		var errs []error
		if ttl.After <= 0 {
			errs = append(errs, fmt.Errorf("%w: After is %v, want a positive duration", ErrInvalidTTL, ttl.After))
		}
		if ttl.Domain != EventTime && ttl.Domain != ProcessingTime {
			errs = append(errs, fmt.Errorf("%w: Domain is %v, want EventTime or ProcessingTime", ErrInvalidTTL, ttl.Domain))
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

// now returns the clock's time in domain d.
func now(clock Clock, d TimeDomain) int64 {
	if d == EventTime {
		return clock.EventTime()
	}
	return clock.ProcessingTime()
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

// NewSweeper returns a Sweeper over s, a store written by typed handles,
// that compares stored expiries with clock's time in domain. Values
// without an expiry, and values not in the handle encoding, are kept.
func NewSweeper(s Store, domain TimeDomain, clock Clock) *Sweeper {
	return &Sweeper{s: s, domain: domain, clock: clock}
}

var errStopSweep = errors.New("state: sweep limit reached")

// Sweep examines at most limit entries from where the last call stopped
// (wrapping to the start after the last key) and deletes the expired ones.
// It returns how many it deleted. If s does not implement FromScanner, each
// call also reads (without counting) the keys before its cursor.
func (sw *Sweeper) Sweep(limit int) (deleted int, err error) {
	if sw.clock == nil || (sw.domain != EventTime && sw.domain != ProcessingTime) {
		return 0, fmt.Errorf("%w: sweeper needs a clock and a valid domain", ErrInvalidTTL)
	}
	if limit <= 0 {
		return 0, nil
	}
	t := now(sw.clock, sw.domain)
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
