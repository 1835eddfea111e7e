package windows

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Window is a half-open interval [Start, End).
//
// For time windows (tumbling, hopping, session) Start and End are epoch
// milliseconds of event time. For count windows they are per-key element
// ordinals: the k-th count window of a key (k = 0, 1, ...) is
// [k*n, (k+1)*n) and holds that key's elements number k*n to (k+1)*n-1 in
// arrival order. See [CountWindows].
type Window struct {
	Start, End int64
}

// Contains reports whether Start <= t < End.
func (w Window) Contains(t int64) bool { return w.Start <= t && t < w.End }

// String formats the window as "[start,end)".
func (w Window) String() string {
	return "[" + strconv.FormatInt(w.Start, 10) + "," + strconv.FormatInt(w.End, 10) + ")"
}

// Kind is the kind of an [Assigner]. The zero Kind is invalid, so a zero
// Assigner is rejected by [Spec.Validate].
type Kind uint8

const (
	KindTumbling Kind = iota + 1
	KindHopping
	KindSession
	KindCount
)

func (k Kind) String() string {
	switch k {
	case KindTumbling:
		return "tumbling"
	case KindHopping:
		return "hopping"
	case KindSession:
		return "session"
	case KindCount:
		return "count"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Assigner says which windows a record belongs to. Build one with
// [Tumbling], [Hopping], [Session] or [CountWindows] (or [Checked] of
// one); the zero value is invalid. An Assigner is an immutable value, safe
// to copy and share.
type Assigner struct {
	err     error // set by Checked: why the assigner could not be made
	kind    Kind
	size    int64 // ms; tumbling, hopping
	advance int64 // ms; hopping (== size for tumbling)
	offset  int64 // ms; tumbling, hopping
	gap     int64 // ms; session
	n       int64 // elements; count
}

// AssignerOpt configures an assigner.
type AssignerOpt interface{ apply(*assignerCfg) }

type assignerCfg struct{ offset time.Duration }

type offsetOpt time.Duration

func (o offsetOpt) apply(c *assignerCfg) { c.offset = time.Duration(o) }

// WithOffset shifts the alignment of tumbling and hopping windows: window
// starts are offset + k*advance for integer k. The default is 0 (windows
// aligned to the Unix epoch). It must satisfy 0 <= offset < advance (size
// for tumbling windows). Session and count assigners take no options.
func WithOffset(d time.Duration) AssignerOpt { return offsetOpt(d) }

func wholeMillis(field string, d time.Duration) (int64, error) {
	if d <= 0 {
		return 0, specErr(field, "must be positive, got %v", d)
	}
	if d%time.Millisecond != 0 {
		return 0, specErr(field, "must be a whole number of milliseconds, got %v", d)
	}
	return d.Milliseconds(), nil
}

// Tumbling returns an assigner of fixed-size, non-overlapping windows
// [offset + k*size, offset + (k+1)*size). size must be a positive whole
// number of milliseconds.
func Tumbling(size time.Duration, opts ...AssignerOpt) (Assigner, error) {
	s, err := wholeMillis("Tumbling.size", size)
	if err != nil {
		return Assigner{}, err
	}
	off, err := offsetFor("Tumbling", s, opts)
	if err != nil {
		return Assigner{}, err
	}
	return Assigner{kind: KindTumbling, size: s, advance: s, offset: off}, nil
}

// Hopping returns an assigner of fixed-size windows that start every
// advance; a record belongs to every window that contains it, which is
// exactly size/advance windows. size must be a positive multiple of advance
// (so every record is in the same number of windows and window boundaries
// line up); advance == size is a tumbling window.
func Hopping(size, advance time.Duration, opts ...AssignerOpt) (Assigner, error) {
	s, err := wholeMillis("Hopping.size", size)
	if err != nil {
		return Assigner{}, err
	}
	a, err := wholeMillis("Hopping.advance", advance)
	if err != nil {
		return Assigner{}, err
	}
	if a > s || s%a != 0 {
		return Assigner{}, specErr("Hopping.size", "must be a multiple of advance %v, got %v", advance, size)
	}
	off, err := offsetFor("Hopping", a, opts)
	if err != nil {
		return Assigner{}, err
	}
	return Assigner{kind: KindHopping, size: s, advance: a, offset: off}, nil
}

func offsetFor(name string, period int64, opts []AssignerOpt) (int64, error) {
	var c assignerCfg
	for _, o := range opts {
		o.apply(&c)
	}
	if c.offset%time.Millisecond != 0 || c.offset < 0 || c.offset.Milliseconds() >= period {
		return 0, specErr(name+".offset", "must be whole milliseconds in [0, %dms), got %v", period, c.offset)
	}
	return c.offset.Milliseconds(), nil
}

// Session returns an assigner of per-key session windows: two records of a
// key are in the same session when they are less than gap apart (sessions
// are chained, so a session spans any number of records). A session is
// [first event, last event + gap). A record that falls within gap of two
// sessions (for example an out-of-order record between them) merges them
// into one, combining their accumulators with [Aggregation.Merge]. gap must
// be a positive whole number of milliseconds.
func Session(gap time.Duration) (Assigner, error) {
	g, err := wholeMillis("Session.gap", gap)
	if err != nil {
		return Assigner{}, err
	}
	return Assigner{kind: KindSession, gap: g}, nil
}

// CountWindows returns an assigner of per-key count windows of n elements:
// a window is complete, and is emitted at the next [Operator.Advance]
// whatever the watermark, once n records of its key have been added.
// Windows are numbered by element ordinal (see [Window]), so the k-th
// window of a key is [k*n, (k+1)*n); the operator keeps one small counter
// per key for ever so that ordinals (and so result ids) never repeat.
// Count windows are never late and ignore Spec.Grace.
func CountWindows(n int64) (Assigner, error) {
	if n < 1 {
		return Assigner{}, specErr("CountWindows.n", "must be at least 1, got %d", n)
	}
	return Assigner{kind: KindCount, n: n}, nil
}

// Checked returns a when err is nil, and otherwise an invalid assigner
// that holds err (see [Assigner.Err]). It takes a constructor's two
// results, so that a topology can be written without handling each
// constructor's error where the assigner is made:
//
//	spec := windows.Spec{Assigner: windows.Checked(windows.Tumbling(size))}
//
// topology.Aggregate and topology.Combine report the held error at Build,
// naming the operator. (Spec.Validate, and so NewOperator, reject such an
// assigner as not set; check Err first for the cause.)
func Checked(a Assigner, err error) Assigner {
	if err != nil {
		return Assigner{err: err}
	}
	return a
}

// Err returns the error a [Checked] assigner holds: why its constructor
// failed. It is nil for any other assigner.
func (a Assigner) Err() error { return a.err }

// Kind returns the assigner's kind.
func (a Assigner) Kind() Kind { return a.kind }

// Size is the window size (tumbling, hopping), the gap (session) or 0
// (count).
func (a Assigner) Size() time.Duration {
	switch a.kind {
	case KindTumbling, KindHopping:
		return time.Duration(a.size) * time.Millisecond
	case KindSession:
		return time.Duration(a.gap) * time.Millisecond
	}
	return 0
}

// N is the number of elements of a count window, or 0.
func (a Assigner) N() int64 { return a.n }

func (a Assigner) String() string {
	switch a.kind {
	case KindTumbling:
		return fmt.Sprintf("tumbling(size=%dms, offset=%dms)", a.size, a.offset)
	case KindHopping:
		return fmt.Sprintf("hopping(size=%dms, advance=%dms, offset=%dms)", a.size, a.advance, a.offset)
	case KindSession:
		return fmt.Sprintf("session(gap=%dms)", a.gap)
	case KindCount:
		return fmt.Sprintf("count(n=%d)", a.n)
	}
	if a.err != nil {
		return "invalid assigner: " + a.err.Error()
	}
	return "invalid assigner"
}

// Slice returns the start of the slice of event time that ts falls in,
// [start, start+advance): the instants of one slice belong to the same
// windows (a tumbling window is one slice, a hopping window size/advance
// of them), so what is known of a slice is known of all its windows.
// Session and count windows have no slices: ok is false.
func (a Assigner) Slice(ts int64) (start int64, ok bool) {
	if a.kind != KindTumbling && a.kind != KindHopping {
		return 0, false
	}
	return ts - floorMod(ts-a.offset, a.advance), true
}

// AppendWindows appends the windows an event at ts belongs to, in
// ascending start order, and returns the extended slice. For session
// assigners it appends the record's own proto-session [ts, ts+gap) (before
// any merging); for count assigners it appends nothing, because a count
// window depends on the key's history. Ends that would overflow int64 are
// clamped to math.MaxInt64.
func (a Assigner) AppendWindows(dst []Window, ts int64) []Window {
	switch a.kind {
	case KindTumbling, KindHopping:
		last := ts - floorMod(ts-a.offset, a.advance) // latest start <= ts
		first := last - (a.size - a.advance)
		if first > last { // overflow of the subtraction near MinInt64
			first = last
		}
		for s := first; ; s += a.advance {
			if e := satAdd(s, a.size); e > ts {
				dst = append(dst, Window{Start: s, End: e})
			}
			if s >= last { // check before adding, so s never overflows
				break
			}
		}
	case KindSession:
		dst = append(dst, Window{Start: ts, End: satAdd(ts, a.gap)})
	}
	return dst
}

// floorMod is a mod m in [0, m) for m > 0.
func floorMod(a, m int64) int64 {
	r := a % m
	if r < 0 {
		r += m
	}
	return r
}

// satAdd is a+b for b >= 0, clamped to math.MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
