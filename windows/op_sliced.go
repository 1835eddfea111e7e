package windows

import (
	"fmt"
	"slices"
)

// slicedKind is the code of a sliced hopping-window operator (see
// slicing and add): records go into panes, and a window's value is the
// merge of its panes, computed when it closes.
type slicedKind[V, A any] struct {
	o *Operator[V, A]
	// panes are the panes in the store; whole are windows with an entry
	// of their own (written before the operator sliced).
	panes map[string]*keyPanes
	whole map[winID]struct{}
}

// restoreEntry registers a window written before the operator sliced.
func (s *slicedKind[V, A]) restoreEntry(id winID, e entry) {
	s.o.register(id, e.end)
	s.whole[id] = struct{}{}
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
func (s *slicedKind[V, A]) keyPanes(key []byte) *keyPanes {
	kp := s.panes[string(key)]
	if kp == nil {
		kp = &keyPanes{key: string(key)}
		s.panes[kp.key] = kp
	}
	return kp
}

// restorePane rebuilds a pane and registers the windows over it that
// are neither emitted nor were closed when the pane was created (a pane
// keeps the watermark of that moment): those that are open at the later
// of the two watermarks. Advance emits every closed window before it
// returns, and persists the watermark first.
func (s *slicedKind[V, A]) restorePane(key []byte, start int64, e entry) error {
	o := s.o
	kp := s.keyPanes(key)
	kp.add(start) // Restore's scan is in (key, start) order
	wm := max(int64(e.count^signBit), o.wm)
	for _, w := range o.spec.Assigner.AppendWindows(o.scratch[:0], start) {
		id := winID{key: kp.key, start: w.Start}
		if _, open := o.open[id]; open || o.closed(w.End, wm) {
			continue
		}
		o.register(id, w.End)
	}
	return nil
}

// add folds v into its pane: the advance-long slice [p, p+advance)
// of event time where p is the start of the record's latest window. Every
// window of a record covers its whole pane, so a window's value is the
// merge of the size/advance panes it covers, computed when it closes
// (emitWindow). The first record of a pane registers the pane's open
// windows that are not registered yet; the pane entry keeps the
// watermark of that moment (in its count field), from which Restore
// derives them again. Emitting the window that starts at a pane, the last
// one to close, deletes the pane.
func (s *slicedKind[V, A]) add(key []byte, v V, ts int64) (Late, error) {
	o := s.o
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
	kp := s.panes[string(key)]
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
	kp = s.keyPanes(key)
	kp.add(start)
	for _, w := range ws {
		id := winID{key: kp.key, start: w.Start}
		if _, open := o.open[id]; open || o.closed(w.End, o.wm) {
			continue
		}
		o.register(id, w.End)
	}
	return late, nil
}

func (s *slicedKind[V, A]) emitDue(emit func(Result[A]) error) ([]error, error) {
	return s.o.emitClosed(emit, s)
}

// emitWindow is emitFinal for a sliced operator's window id ending at
// end: its value is the merge of the panes it covers, in start order, and of its own
// entry if it has one (a window from before the operator sliced: an
// upgrade keeps such windows, and the records added since are in panes).
// It deletes that entry and the pane the window starts, whose last window
// it is.
func (s *slicedKind[V, A]) emitWindow(end int64, id winID, emit func(Result[A]) error) (emitErr, err error) {
	o := s.o
	var a A
	_, have := s.whole[id]
	if have {
		if a, _, _, err = o.load(appendEntryKey(o.kbuf[:0], []byte(id.key), id.start)); err != nil {
			return nil, err
		}
	}
	kp := s.panes[id.key]
	var starts []int64
	if kp != nil {
		starts = kp.starts
	}
	for _, p := range starts {
		if p < id.start || p >= end {
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
		return nil, fmt.Errorf("%w: window %q [%d,%d) has no panes", ErrCorruptState, id.key, id.start, end)
	}
	r := Result[A]{Key: []byte(id.key), Window: Window{Start: id.start, End: end}, Value: a, Final: true}
	if err := emit(r); err != nil {
		emitErr = emitError(r, err)
	}
	if _, ok := s.whole[id]; ok {
		if err := o.store.Delete(appendEntryKey(o.kbuf[:0], []byte(id.key), id.start)); err != nil {
			return emitErr, fmt.Errorf("windows: delete window: %w", err)
		}
		delete(s.whole, id)
	}
	if i := slices.Index(starts, id.start); i >= 0 { // (the first, as windows close in start order)
		if err := o.store.Delete(appendPaneKey(o.kbuf[:0], []byte(id.key), id.start)); err != nil {
			return emitErr, fmt.Errorf("windows: delete pane: %w", err)
		}
		if kp.starts = slices.Delete(kp.starts, i, i+1); len(kp.starts) == 0 {
			delete(s.panes, id.key)
		}
	}
	return emitErr, nil
}
