package windows

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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

	// sliced: the operator keeps panes (see slicedKind).
	sliced bool
	// k is the code and the in-memory indexes of the assigner's kind of
	// window, made afresh by Restore.
	k windowKind[V, A]

	// In-memory indexes shared by the kinds, rebuilt by Restore from the
	// Store.
	open  map[winID]int64 // time windows in the Store: id -> end
	byEnd endIndex        // time windows by end; may hold stale entries
	dirty map[winID]int64 // EmitEarly: windows changed since the last Advance

	scratch []Window
	vbuf    []byte // scratch for stored entries
	kbuf    []byte
}

// windowKind is the code of one kind of window and its own in-memory
// indexes. Each kind is in its own file: plain time windows (op_time.go),
// sliced hopping windows (op_sliced.go), sessions (op_session.go) and
// count windows (op_count.go). The emission they share (Advance, final
// and early results, emit failures, the watermark entry) is in emit.go. Its methods are called by the Operator's, on the goroutine
// that calls those; they read and write the Operator's shared state.
type windowKind[V, A any] interface {
	// restoreEntry registers a window entry of the Store (Restore calls
	// it in (key, start) order, after reading the watermark).
	restoreEntry(id winID, e entry)
	// restorePane registers a pane of the Store (Restore calls it in
	// (key, start) order, after every restoreEntry).
	restorePane(key []byte, start int64, e entry) error
	// add folds v, of the record with key and event time ts, into its
	// windows at watermark o.wm.
	add(key []byte, v V, ts int64) (Late, error)
	// emitDue emits every window due at o.wm as final and deletes its
	// state, returning the errors of emit (emitErrs) and the error of
	// the store that stopped it (err).
	emitDue(emit func(Result[A]) error) (emitErrs []error, err error)
}

// newKind returns the windowKind of o's spec, with empty indexes.
func (o *Operator[V, A]) newKind() windowKind[V, A] {
	switch {
	case o.spec.Assigner.kind == KindSession:
		return &sessionKind[V, A]{o: o, sessions: make(map[string][]Window)}
	case o.spec.Assigner.kind == KindCount:
		return &countKind[V, A]{o: o, ready: make(map[winID]int64)}
	case o.sliced:
		return &slicedKind[V, A]{o: o, panes: make(map[string]*keyPanes), whole: make(map[winID]struct{})}
	}
	return &timeKind[V, A]{o: o}
}

// errPanes is restorePane's error for an operator that does not slice.
func (o *Operator[V, A]) errPanes() error {
	return fmt.Errorf("%w: panes in the store of a %s operator that does not slice (did its aggregation stop being Commutative?)", ErrCorruptState, o.spec.Assigner.kind)
}

type winID struct {
	key   string
	start int64
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
	o.dirty = make(map[winID]int64)
	o.k = o.newKind()

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

	err := o.scan(prefixEntry, func(key []byte, start int64, e entry) error {
		o.k.restoreEntry(winID{key: string(key), start: start}, e)
		return nil
	})
	if err != nil {
		return fmt.Errorf("windows: restore: %w", err)
	}
	if err := o.scan(prefixPane, o.k.restorePane); err != nil {
		return fmt.Errorf("windows: restore: %w", err)
	}
	return nil
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

// register adds the time window id ending at end to the open-window
// indexes.
func (o *Operator[V, A]) register(id winID, end int64) {
	o.open[id] = end
	o.byEnd.push(end, id)
}

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
	return o.k.add(key, v, ts)
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
