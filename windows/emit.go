package windows

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Advance moves the operator to watermark and emits what is due, in this
// order: every window with End + Grace <= watermark (count windows: every
// complete window) as final, in (End, key, Start) order, deleting its
// state; then, with EmitEarly, every other window changed since the
// previous Advance with Final=false, in the same order. Each window is
// emitted as final exactly once. A window for which emit returns an error
// is done all the same (its state is deleted: the error is the window's,
// and retrying it would hold back every window after it); Advance goes on
// and returns the errors of emit, each wrapped with its window, joined.
// An error of the store stops it at once.
func (o *Operator[V, A]) Advance(watermark int64, emit func(Result[A]) error) error {
	if watermark > o.wm {
		o.wm = watermark
	}
	if o.wm > o.persistedWM {
		if err := o.store.Put(metaWatermarkKey, binary.BigEndian.AppendUint64(nil, uint64(o.wm))); err != nil {
			return fmt.Errorf("windows: put watermark: %w", err)
		}
		o.persistedWM = o.wm
	}
	emitErrs, err := o.k.emitDue(emit)
	if err != nil {
		return errors.Join(append(emitErrs, err)...)
	}
	if o.spec.Emit == EmitEarly && len(o.dirty) > 0 {
		if emitErrs, err = o.emitEarly(emitErrs, emit); err != nil {
			return errors.Join(append(emitErrs, err)...)
		}
	}
	return errors.Join(emitErrs...)
}

// windowEmitter emits one closed time window as final (see emitClosed).
type windowEmitter[A any] interface {
	emitWindow(end int64, id winID, emit func(Result[A]) error) (emitErr, err error)
}

// emitClosed is emitDue for time windows (every kind but count): it has
// w emit every open window closed at o.wm, in (End, key, Start) order,
// and forgets it. An error of the store stops it, and the windows not
// yet emitted stay open.
func (o *Operator[V, A]) emitClosed(emit func(Result[A]) error, w windowEmitter[A]) (emitErrs []error, err error) {
	for end, ok := o.byEnd.first(); ok && o.closed(end, o.wm); end, ok = o.byEnd.first() {
		ids := o.byEnd.take() // in (key, start) order
		for i, id := range ids {
			if e, ok := o.open[id]; !ok || e != end {
				continue // stale: merged away, extended or already emitted
			}
			emitErr, err := w.emitWindow(end, id, emit)
			if err != nil {
				for _, id := range ids[i:] {
					o.byEnd.push(end, id)
				}
				return emitErrs, err
			}
			if emitErr != nil {
				emitErrs = append(emitErrs, emitErr)
			}
			delete(o.open, id)
		}
	}
	return emitErrs, nil
}

// emitEarly emits every window changed since the previous Advance and
// not emitted as final since, with Final=false, in (End, key, Start)
// order. It appends the errors of emit to emitErrs; err is an error of
// the store.
func (o *Operator[V, A]) emitEarly(emitErrs []error, emit func(Result[A]) error) (_ []error, err error) {
	ids := sortedIDs(o.dirty)
	for _, he := range ids {
		a, _, isNew, err := o.load(appendEntryKey(o.kbuf[:0], []byte(he.id.key), he.id.start))
		if err != nil {
			return emitErrs, err
		}
		if !isNew { // absent: emitted as final above
			r := Result[A]{Key: []byte(he.id.key), Window: Window{Start: he.id.start, End: he.end}, Value: a}
			if err := emit(r); err != nil {
				emitErrs = append(emitErrs, emitError(r, err))
			}
		}
		delete(o.dirty, he.id)
	}
	return emitErrs, nil
}

// emitError wraps an error emit returned for r.
func emitError[A any](r Result[A], err error) error {
	return fmt.Errorf("windows: emit window [%d,%d) of key %q: %w", r.Window.Start, r.Window.End, r.Key, err)
}

// emitFinal emits the window id as final and deletes its state, also when
// emit fails (emitErr): the window is done either way. err is an error of
// the store; the window stays open (the engine stops, and the checkpoint's
// outputs and state writes are discarded together).
func (o *Operator[V, A]) emitFinal(id winID, emit func(Result[A]) error) (emitErr, err error) {
	sk := appendEntryKey(o.kbuf[:0], []byte(id.key), id.start)
	raw, err := o.store.Get(sk)
	if err != nil {
		return nil, fmt.Errorf("windows: get window %q %d: %w", id.key, id.start, err)
	}
	e, err := decodeEntry(raw)
	if err != nil {
		return nil, err
	}
	a, err := o.acc.Decode(e.acc)
	if err != nil {
		return nil, fmt.Errorf("%w: accumulator: %w", ErrCorruptState, err)
	}
	r := Result[A]{Key: []byte(id.key), Window: Window{Start: id.start, End: e.end}, Value: a, Final: true}
	if err := emit(r); err != nil {
		emitErr = emitError(r, err)
	}
	if err := o.store.Delete(sk); err != nil {
		return emitErr, fmt.Errorf("windows: delete window: %w", err)
	}
	delete(o.dirty, id)
	return emitErr, nil
}

func sortedIDs(m map[winID]int64) []heapEntry {
	ids := make([]heapEntry, 0, len(m))
	for id, end := range m {
		ids = append(ids, heapEntry{end: end, id: id})
	}
	slices.SortFunc(ids, heapEntry.compare)
	return ids
}

// heapEntry orders windows by (end, key, start).
type heapEntry struct {
	end int64
	id  winID
}

func (a heapEntry) compare(b heapEntry) int {
	switch {
	case a.end != b.end:
		if a.end < b.end {
			return -1
		}
		return 1
	case a.id.key != b.id.key:
		return strings.Compare(a.id.key, b.id.key)
	case a.id.start != b.id.start:
		if a.id.start < b.id.start {
			return -1
		}
		return 1
	}
	return 0
}

// endIndex holds windows by end: a min-heap of the distinct ends, and the
// windows of each end, put in (key, start) order when they are taken. A
// window costs an append when it opens and its share of one sort when it
// closes; a heap of windows cost two sifts of string comparisons (5% of
// Nexmark q5).
type endIndex struct {
	ends    []int64 // min-heap of the keys of wins
	wins    map[int64]endWindows
	scratch []winID // take's result
}

// endWindows are the windows of one end; the first is inline, as sessions
// mostly have an end of their own.
type endWindows struct {
	first winID
	more  []winID
}

func (x *endIndex) reset() {
	x.ends, x.wins = x.ends[:0], make(map[int64]endWindows)
}

func (x *endIndex) push(end int64, id winID) {
	ws, ok := x.wins[end]
	if ok {
		ws.more = append(ws.more, id)
		x.wins[end] = ws
		return
	}
	x.wins[end] = endWindows{first: id}
	x.ends = append(x.ends, end)
	for i := len(x.ends) - 1; i > 0; { // up
		p := (i - 1) / 2
		if x.ends[p] <= x.ends[i] {
			break
		}
		x.ends[i], x.ends[p] = x.ends[p], x.ends[i]
		i = p
	}
}

// first returns the earliest end.
func (x *endIndex) first() (int64, bool) {
	if len(x.ends) == 0 {
		return 0, false
	}
	return x.ends[0], true
}

// take removes the earliest end and returns its windows in (key, start)
// order, in a slice that is valid until the next take.
func (x *endIndex) take() []winID {
	end := x.ends[0]
	n := len(x.ends) - 1
	x.ends[0] = x.ends[n]
	x.ends = x.ends[:n]
	for i := 0; ; { // down
		l, m := 2*i+1, i
		if l < n && x.ends[l] < x.ends[m] {
			m = l
		}
		if r := l + 1; r < n && x.ends[r] < x.ends[m] {
			m = r
		}
		if m == i {
			break
		}
		x.ends[i], x.ends[m] = x.ends[m], x.ends[i]
		i = m
	}
	ws := x.wins[end]
	delete(x.wins, end)
	x.scratch = append(append(x.scratch[:0], ws.first), ws.more...)
	if len(x.scratch) > 1 {
		slices.SortFunc(x.scratch, func(a, b winID) int {
			if c := strings.Compare(a.key, b.key); c != 0 {
				return c
			}
			return cmp.Compare(a.start, b.start)
		})
	}
	return x.scratch
}
