package windows

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
)

// EmitMode says when an [Operator] emits results.
type EmitMode uint8

const (
	// EmitFinal (the default) emits each window once, when
	// watermark >= End + Grace (count windows: once complete).
	EmitFinal EmitMode = iota
	// EmitEarly also emits, at every Advance, the current value of every
	// window changed since the previous Advance, with Final=false. The
	// final result is emitted as with EmitFinal.
	EmitEarly
)

func (m EmitMode) String() string {
	switch m {
	case EmitFinal:
		return "final"
	case EmitEarly:
		return "early"
	}
	return fmt.Sprintf("EmitMode(%d)", uint8(m))
}

// Spec configures a windowed aggregation.
type Spec struct {
	// Assigner is the window assigner. Required.
	Assigner Assigner
	// Grace is the allowed lateness after a window's end: a window is
	// closed, emitted as final and forgotten once
	// watermark >= End + Grace. Default 0; must be >= 0 and whole
	// milliseconds. Ignored by count windows.
	Grace time.Duration
	// Emit is the emission mode. Default EmitFinal.
	Emit EmitMode
}

// Validate reports every problem of s at once (joined with errors.Join);
// each unwraps to ErrInvalidSpec.
func (s Spec) Validate() error {
	var errs []error
	if s.Assigner.kind < KindTumbling || s.Assigner.kind > KindCount {
		errs = append(errs, specErr("Spec.Assigner", "not set (use Tumbling, Hopping, Session or CountWindows)"))
	}
	if s.Grace < 0 || s.Grace%time.Millisecond != 0 {
		errs = append(errs, specErr("Spec.Grace", "must be >= 0 and whole milliseconds, got %v", s.Grace))
	}
	if s.Emit != EmitFinal && s.Emit != EmitEarly {
		errs = append(errs, specErr("Spec.Emit", "unknown mode %d", uint8(s.Emit)))
	}
	return errors.Join(errs...)
}

// Late describes a record that [Operator.Add] did not add (or added to
// only some of its windows).
type Late struct {
	// Late is true when the record was added to no window: every window
	// it falls in is closed. The caller sends it to the late-data side
	// output.
	Late bool
	// Windows are the closed windows the record fell in. For a hopping
	// window it may be non-empty with Late false: the record was added to
	// its open windows only. For a session it is the session the record
	// would have formed or joined.
	Windows []Window
	// Watermark is the watermark the decision was made against.
	Watermark int64
}

// Operator is a windowed aggregation over a state.Store. See the package
// documentation for the store layout and the threading contract.
type Operator[V, A any] struct {
	spec  Spec
	grace int64
	store state.Store
	acc   serde.Serde[A]
	agg   Aggregation[V, A]

	// wm is the highest watermark passed to Add or Advance; persistedWM
	// is the value last written to the Store.
	wm, persistedWM int64

	// In-memory indexes, rebuilt by Restore from the Store.
	open  map[winID]int64 // time windows in the Store: id -> end
	byEnd endIndex        // time windows by end; may hold stale entries
	ready map[winID]int64 // complete count windows awaiting emission: id -> end
	dirty map[winID]int64 // EmitEarly: windows changed since the last Advance
	// sessions: per key, its sessions sorted by start (session windows only)
	sessions map[string][]Window
	// Sliced operators (see addSliced): panes are the panes in the
	// store; whole are windows with an entry of their own (written
	// before the operator sliced).
	sliced bool
	panes  map[string]*keyPanes
	whole  map[winID]struct{}

	scratch []Window
	vbuf    []byte // scratch for stored entries
	kbuf    []byte
}

type winID struct {
	key   string
	start int64
}

// keyPanes are the starts of one key's panes, ascending, with the key as
// the string the operator's indexes share.
type keyPanes struct {
	key    string
	starts []int64
}

// add inserts start (absent) in order; panes mostly come in time order.
func (kp *keyPanes) add(start int64) {
	i := len(kp.starts)
	for i > 0 && kp.starts[i-1] > start {
		i--
	}
	kp.starts = slices.Insert(kp.starts, i, start)
}

func (kp *keyPanes) has(start int64) bool {
	for i := len(kp.starts) - 1; i >= 0; i-- {
		if kp.starts[i] <= start {
			return kp.starts[i] == start
		}
	}
	return false
}

// keyPanes returns a key's panes, adding the key if absent.
func (o *Operator[V, A]) keyPanes(key []byte) *keyPanes {
	kp := o.panes[string(key)]
	if kp == nil {
		kp = &keyPanes{key: string(key)}
		o.panes[kp.key] = kp
	}
	return kp
}

// NewOperator returns an operator over store, which it owns: nothing else
// may write the keys of the layout described in the package
// documentation. It calls Restore, so state already in store is picked
// up. acc encodes accumulators into the store.
func NewOperator[V, A any](spec Spec, store state.Store, acc serde.Serde[A], agg Aggregation[V, A]) (*Operator[V, A], error) {
	errs := []error{spec.Validate()}
	if store == nil {
		errs = append(errs, specErr("store", "is nil"))
	}
	if acc == nil {
		errs = append(errs, specErr("acc", "serde is nil"))
	}
	if agg.Init == nil || agg.Add == nil {
		errs = append(errs, specErr("Aggregation", "Init and Add are required"))
	}
	if spec.Assigner.kind == KindSession && agg.Merge == nil {
		errs = append(errs, specErr("Aggregation.Merge", "is required for session windows"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	o := &Operator[V, A]{spec: spec, grace: spec.Grace.Milliseconds(), store: store, acc: acc, agg: agg}
	o.sliced = slicing(spec, agg)
	if spec.Assigner.kind == KindCount {
		o.grace = 0
	}
	if err := o.Restore(); err != nil {
		return nil, err
	}
	return o, nil
}

// Spec returns the operator's spec.
func (o *Operator[V, A]) Spec() Spec { return o.spec }

// Watermark returns the highest watermark the operator has seen
// (math.MinInt64 if none), restored from the Store by Restore.
func (o *Operator[V, A]) Watermark() int64 { return o.wm }

// Restore drops the in-memory indexes and rebuilds them by scanning the
// Store. Call it whenever the Store's contents were replaced under the
// operator (restore from disk or changelog, aborted checkpoint). Early
// updates pending at that moment are dropped (the engine calls Advance at
// every checkpoint barrier, so none are pending in checkpointed state).
func (o *Operator[V, A]) Restore() error {
	o.wm, o.persistedWM = math.MinInt64, math.MinInt64
	o.open = make(map[winID]int64)
	o.byEnd.reset()
	o.ready = make(map[winID]int64)
	o.dirty = make(map[winID]int64)
	o.sessions = make(map[string][]Window)
	o.panes = make(map[string]*keyPanes)
	o.whole = make(map[winID]struct{})
	session := o.spec.Assigner.kind == KindSession

	switch raw, err := o.store.Get(metaWatermarkKey); {
	case errors.Is(err, state.ErrNotFound):
	case err != nil:
		return fmt.Errorf("windows: restore: %w", err)
	case len(raw) != 8:
		return fmt.Errorf("%w: watermark entry of %d bytes", ErrCorruptState, len(raw))
	default:
		o.wm = int64(binary.BigEndian.Uint64(raw))
		o.persistedWM = o.wm
	}

	count := o.spec.Assigner.kind == KindCount
	err := o.scan(prefixEntry, func(key []byte, start int64, e entry) error {
		id := winID{key: string(key), start: start}
		switch {
		case count && e.flags&flagComplete != 0:
			o.ready[id] = e.end
		case !count:
			o.open[id] = e.end
			o.byEnd.push(e.end, id)
			if session { // the scan is in (key, start) order
				o.sessions[id.key] = append(o.sessions[id.key], Window{Start: start, End: e.end})
			}
			if o.sliced {
				o.whole[id] = struct{}{}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("windows: restore: %w", err)
	}
	if err := o.restorePanes(); err != nil {
		return fmt.Errorf("windows: restore: %w", err)
	}
	return nil
}

// restorePanes rebuilds a sliced operator's panes and registers the
// windows over them that are neither emitted nor were closed when their
// pane was created (a pane keeps the watermark of that moment): those
// that are open at the later of the two watermarks. Advance emits every
// closed window before it returns, and persists the watermark first.
func (o *Operator[V, A]) restorePanes() error {
	return o.scan(prefixPane, func(key []byte, start int64, e entry) error {
		if !o.sliced {
			return fmt.Errorf("%w: panes in the store of a %s operator that does not slice (did its aggregation stop being Commutative?)", ErrCorruptState, o.spec.Assigner.kind)
		}
		kp := o.keyPanes(key)
		kp.add(start) // the scan is in (key, start) order
		wm := max(int64(e.count^signBit), o.wm)
		for _, w := range o.spec.Assigner.AppendWindows(o.scratch[:0], start) {
			id := winID{key: kp.key, start: w.Start}
			if _, open := o.open[id]; open || o.closed(w.End, wm) {
				continue
			}
			o.open[id] = w.End
			o.byEnd.push(w.End, id)
		}
		return nil
	})
}

// scan calls fn with every window entry (prefixEntry) or pane (prefixPane)
// in the store, decoded, in (key, start) order.
func (o *Operator[V, A]) scan(prefix byte, fn func(key []byte, start int64, e entry) error) error {
	return o.store.Scan([]byte{prefix}, func(k, v []byte) error {
		key, start, err := decodeEntryKey(k)
		if err != nil {
			return err
		}
		e, err := decodeEntry(v)
		if err != nil {
			return err
		}
		return fn(key, start, e)
	})
}

// closed reports whether a window ending at end is closed at watermark wm.
func (o *Operator[V, A]) closed(end, wm int64) bool { return satAdd(end, o.grace) <= wm }

// Add adds value v of the record with key and event time ts to its
// windows. watermark is the task's current watermark (Tracker.Current);
// the operator uses the highest watermark it has seen, so a smaller one
// cannot reopen a closed window. A window is closed when
// End + Grace <= watermark; a record is late when all its windows are
// closed, and then it is not added and Late.Late is true. Count windows
// are never late. key is copied.
func (o *Operator[V, A]) Add(key []byte, v V, ts int64, watermark int64) (Late, error) {
	if watermark > o.wm {
		o.wm = watermark
	}
	switch o.spec.Assigner.kind {
	case KindSession:
		return o.addSession(key, v, ts)
	case KindCount:
		return Late{}, o.addCount(key, v)
	}
	if o.sliced {
		return o.addSliced(key, v, ts)
	}
	ws := o.spec.Assigner.AppendWindows(o.scratch[:0], ts)
	o.scratch = ws
	var late Late
	added := false
	for _, w := range ws {
		if o.closed(w.End, o.wm) {
			late.Windows = append(late.Windows, w)
			continue
		}
		if err := o.addTo(key, w, v); err != nil {
			return Late{}, err
		}
		added = true
	}
	if len(late.Windows) > 0 {
		late.Late = !added
		late.Watermark = o.wm
	}
	return late, nil
}

// addTo folds v into the time window w of key.
func (o *Operator[V, A]) addTo(key []byte, w Window, v V) error {
	o.kbuf = appendEntryKey(o.kbuf[:0], key, w.Start)
	// The open-window index holds every window in the store (Restore
	// rebuilds it), so a window missing from it is new: no store read,
	// which would miss the cache and go to disk.
	id := winID{key: string(key), start: w.Start}
	_, open := o.open[id]
	isNew := !open
	a := o.agg.Init()
	if open {
		var err error
		if a, _, _, err = o.load(o.kbuf); err != nil {
			return err
		}
	}
	a = o.agg.Add(a, v)
	if err := o.save(o.kbuf, 0, w.End, 0, a); err != nil {
		return err
	}
	if isNew || o.spec.Emit == EmitEarly {
		if isNew {
			o.open[id] = w.End
			o.byEnd.push(w.End, id)
		}
		if o.spec.Emit == EmitEarly {
			o.dirty[id] = w.End
		}
	}
	return nil
}

// addSliced folds v into its pane: the advance-long slice [p, p+advance)
// of event time where p is the start of the record's latest window. Every
// window of a record covers its whole pane, so a window's value is the
// merge of the size/advance panes it covers, computed when it closes
// (emitSliced). The first record of a pane registers the pane's open
// windows that are not registered yet; the pane entry keeps the
// watermark of that moment (in its count field), from which Restore
// derives them again. Emitting the window that starts at a pane, the last
// one to close, deletes the pane.
func (o *Operator[V, A]) addSliced(key []byte, v V, ts int64) (Late, error) {
	ws := o.spec.Assigner.AppendWindows(o.scratch[:0], ts)
	o.scratch = ws
	var late Late
	for _, w := range ws {
		if o.closed(w.End, o.wm) {
			late.Windows = append(late.Windows, w)
		}
	}
	if len(late.Windows) > 0 {
		late.Watermark = o.wm
		if late.Late = len(late.Windows) == len(ws); late.Late {
			return late, nil
		}
	}
	start, _ := o.spec.Assigner.Slice(ts) // the start of the record's latest window
	o.kbuf = appendPaneKey(o.kbuf[:0], key, start)
	kp := o.panes[string(key)]
	exists := kp != nil && kp.has(start)
	a, created := o.agg.Init(), uint64(o.wm)^signBit
	if exists {
		var err error
		if a, created, _, err = o.load(o.kbuf); err != nil {
			return Late{}, err
		}
	}
	a = o.agg.Add(a, v)
	if err := o.save(o.kbuf, 0, satAdd(start, o.spec.Assigner.advance), created, a); err != nil {
		return Late{}, err
	}
	if exists {
		return late, nil
	}
	kp = o.keyPanes(key)
	kp.add(start)
	for _, w := range ws {
		id := winID{key: kp.key, start: w.Start}
		if _, open := o.open[id]; open || o.closed(w.End, o.wm) {
			continue
		}
		o.open[id] = w.End
		o.byEnd.push(w.End, id)
	}
	return late, nil
}

func (o *Operator[V, A]) addSession(key []byte, v V, ts int64) (Late, error) {
	merged := Window{Start: ts, End: satAdd(ts, o.spec.Assigner.gap)}
	skey := string(key)
	list := o.sessions[skey] // sorted by start, disjoint
	// Sessions overlapping [ts, ts+gap) form a contiguous run list[lo:hi].
	lo, _ := slices.BinarySearchFunc(list, ts, func(w Window, t int64) int {
		if w.End <= t {
			return -1
		}
		return 1
	})
	hi := lo
	for hi < len(list) && list[hi].Start < merged.End {
		hi++
	}
	parts := list[lo:hi]
	if len(parts) > 0 {
		merged.Start = min(merged.Start, parts[0].Start)
		merged.End = max(merged.End, parts[len(parts)-1].End)
	}
	if o.closed(merged.End, o.wm) {
		return Late{Late: true, Windows: []Window{merged}, Watermark: o.wm}, nil
	}
	var a A
	if len(parts) == 0 {
		a = o.agg.Init()
	}
	for i, p := range parts {
		o.kbuf = appendEntryKey(o.kbuf[:0], key, p.Start)
		pa, _, isNew, err := o.load(o.kbuf)
		if err != nil {
			return Late{}, err
		}
		if isNew {
			return Late{}, fmt.Errorf("%w: session %q %v in the index but not in the store", ErrCorruptState, key, p)
		}
		if i == 0 {
			a = pa
		} else {
			a = o.agg.Merge(a, pa)
		}
	}
	a = o.agg.Add(a, v)
	for _, p := range parts {
		id := winID{key: skey, start: p.Start}
		delete(o.open, id)
		delete(o.dirty, id)
		if p.Start != merged.Start {
			if err := o.store.Delete(appendEntryKey(o.kbuf[:0], key, p.Start)); err != nil {
				return Late{}, fmt.Errorf("windows: delete session: %w", err)
			}
		}
	}
	if err := o.save(appendEntryKey(o.kbuf[:0], key, merged.Start), 0, merged.End, 0, a); err != nil {
		return Late{}, err
	}
	unchanged := len(parts) == 1 && parts[0] == merged
	o.sessions[skey] = slices.Replace(list, lo, hi, merged)
	id := winID{key: skey, start: merged.Start}
	o.open[id] = merged.End
	if !unchanged {
		o.byEnd.push(merged.End, id)
	}
	if o.spec.Emit == EmitEarly {
		o.dirty[id] = merged.End
	}
	return Late{}, nil
}

// dropSession removes the session of key starting at start from the index.
func (o *Operator[V, A]) dropSession(key string, start int64) {
	list := o.sessions[key]
	i := slices.IndexFunc(list, func(w Window) bool { return w.Start == start })
	if i < 0 {
		return
	}
	if list = slices.Delete(list, i, i+1); len(list) == 0 {
		delete(o.sessions, key)
	} else {
		o.sessions[key] = list
	}
}

func (o *Operator[V, A]) addCount(key []byte, v V) error {
	n := o.spec.Assigner.n
	mk := appendMetaCountKey(o.kbuf[:0], key)
	var start int64
	switch raw, err := o.store.Get(mk); {
	case errors.Is(err, state.ErrNotFound):
	case err != nil:
		return fmt.Errorf("windows: get count: %w", err)
	case len(raw) != 8:
		return fmt.Errorf("%w: count entry of %d bytes", ErrCorruptState, len(raw))
	default:
		start = int64(binary.BigEndian.Uint64(raw))
	}
	end := satAdd(start, n)
	o.kbuf = appendEntryKey(o.kbuf[:0], key, start)
	a, cnt, _, err := o.load(o.kbuf)
	if err != nil {
		return err
	}
	a = o.agg.Add(a, v)
	cnt++
	var flags byte
	if cnt >= uint64(n) {
		flags = flagComplete
	}
	if err := o.save(o.kbuf, flags, end, cnt, a); err != nil {
		return err
	}
	id := winID{key: string(key), start: start}
	if flags&flagComplete != 0 {
		if err := o.store.Put(appendMetaCountKey(o.kbuf[:0], key), binary.BigEndian.AppendUint64(nil, uint64(end))); err != nil {
			return fmt.Errorf("windows: put count: %w", err)
		}
		o.ready[id] = end
		delete(o.dirty, id)
	} else if o.spec.Emit == EmitEarly {
		o.dirty[id] = end
	}
	return nil
}

// load reads the window entry at sk, or Init() if there is none.
func (o *Operator[V, A]) load(sk []byte) (a A, count uint64, isNew bool, err error) {
	raw, err := o.store.Get(sk)
	if errors.Is(err, state.ErrNotFound) {
		return o.agg.Init(), 0, true, nil
	}
	if err != nil {
		return a, 0, false, fmt.Errorf("windows: get window: %w", err)
	}
	e, err := decodeEntry(raw)
	if err != nil {
		return a, 0, false, err
	}
	a, err = o.acc.Decode(e.acc)
	if err != nil {
		return a, 0, false, fmt.Errorf("%w: accumulator: %w", ErrCorruptState, err)
	}
	return a, e.count, false, nil
}

func (o *Operator[V, A]) save(sk []byte, flags byte, end int64, count uint64, a A) error {
	b, err := o.acc.Encode(a)
	if err != nil {
		return fmt.Errorf("windows: encode accumulator: %w", err)
	}
	o.vbuf = appendEntry(o.vbuf[:0], flags, end, count, b) // Put copies
	if err := o.store.Put(sk, o.vbuf); err != nil {
		return fmt.Errorf("windows: put window: %w", err)
	}
	return nil
}

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
	var emitErrs []error
	if o.spec.Assigner.kind == KindCount {
		var err error
		if emitErrs, err = o.emitReady(emit); err != nil {
			return errors.Join(append(emitErrs, err)...)
		}
	} else {
		for end, ok := o.byEnd.first(); ok && o.closed(end, o.wm); end, ok = o.byEnd.first() {
			ids := o.byEnd.take() // in (key, start) order
			for i, id := range ids {
				if e, ok := o.open[id]; !ok || e != end {
					continue // stale: merged away, extended or already emitted
				}
				var emitErr, err error
				if o.sliced {
					emitErr, err = o.emitSliced(heapEntry{end: end, id: id}, emit)
				} else {
					emitErr, err = o.emitFinal(id, emit)
				}
				if err != nil {
					for _, id := range ids[i:] {
						o.byEnd.push(end, id)
					}
					return errors.Join(append(emitErrs, err)...)
				}
				if emitErr != nil {
					emitErrs = append(emitErrs, emitErr)
				}
				delete(o.open, id)
			}
		}
	}
	if o.spec.Emit == EmitEarly && len(o.dirty) > 0 {
		ids := sortedIDs(o.dirty)
		for _, he := range ids {
			a, _, isNew, err := o.load(appendEntryKey(o.kbuf[:0], []byte(he.id.key), he.id.start))
			if err != nil {
				return errors.Join(append(emitErrs, err)...)
			}
			if !isNew { // absent: emitted as final above
				r := Result[A]{Key: []byte(he.id.key), Window: Window{Start: he.id.start, End: he.end}, Value: a}
				if err := emit(r); err != nil {
					emitErrs = append(emitErrs, emitError(r, err))
				}
			}
			delete(o.dirty, he.id)
		}
	}
	return errors.Join(emitErrs...)
}

// emitError wraps an error emit returned for r.
func emitError[A any](r Result[A], err error) error {
	return fmt.Errorf("windows: emit window [%d,%d) of key %q: %w", r.Window.Start, r.Window.End, r.Key, err)
}

func (o *Operator[V, A]) emitReady(emit func(Result[A]) error) (emitErrs []error, err error) {
	if len(o.ready) == 0 {
		return nil, nil
	}
	for _, he := range sortedIDs(o.ready) {
		emitErr, err := o.emitFinal(he.id, emit)
		if err != nil {
			return emitErrs, err
		}
		if emitErr != nil {
			emitErrs = append(emitErrs, emitErr)
		}
		delete(o.ready, he.id)
	}
	return emitErrs, nil
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
	if o.spec.Assigner.kind == KindSession {
		o.dropSession(id.key, id.start)
	}
	return emitErr, nil
}

// emitSliced is emitFinal for a sliced operator's window he: its value
// is the merge of the panes it covers, in start order, and of its own
// entry if it has one (a window from before the operator sliced: an
// upgrade keeps such windows, and the records added since are in panes).
// It deletes that entry and the pane the window starts, whose last window
// it is.
func (o *Operator[V, A]) emitSliced(he heapEntry, emit func(Result[A]) error) (emitErr, err error) {
	id := he.id
	var a A
	_, have := o.whole[id]
	if have {
		if a, _, _, err = o.load(appendEntryKey(o.kbuf[:0], []byte(id.key), id.start)); err != nil {
			return nil, err
		}
	}
	kp := o.panes[id.key]
	var starts []int64
	if kp != nil {
		starts = kp.starts
	}
	for _, p := range starts {
		if p < id.start || p >= he.end {
			continue
		}
		pa, _, _, err := o.load(appendPaneKey(o.kbuf[:0], []byte(id.key), p))
		if err != nil {
			return nil, err
		}
		if have {
			a = o.agg.Merge(a, pa)
		} else {
			a, have = pa, true
		}
	}
	if !have {
		return nil, fmt.Errorf("%w: window %q [%d,%d) has no panes", ErrCorruptState, id.key, id.start, he.end)
	}
	r := Result[A]{Key: []byte(id.key), Window: Window{Start: id.start, End: he.end}, Value: a, Final: true}
	if err := emit(r); err != nil {
		emitErr = emitError(r, err)
	}
	if _, ok := o.whole[id]; ok {
		if err := o.store.Delete(appendEntryKey(o.kbuf[:0], []byte(id.key), id.start)); err != nil {
			return emitErr, fmt.Errorf("windows: delete window: %w", err)
		}
		delete(o.whole, id)
	}
	if i := slices.Index(starts, id.start); i >= 0 { // (the first, as windows close in start order)
		if err := o.store.Delete(appendPaneKey(o.kbuf[:0], []byte(id.key), id.start)); err != nil {
			return emitErr, fmt.Errorf("windows: delete pane: %w", err)
		}
		if kp.starts = slices.Delete(kp.starts, i, i+1); len(kp.starts) == 0 {
			delete(o.panes, id.key)
		}
	}
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
