package windows

import (
	"fmt"
	"slices"
)

// sessionKind is the code of session windows: per key, records less than
// gap apart chain into one session, whose entry an out-of-order record
// may merge with its neighbours'.
type sessionKind[V, A any] struct {
	o *Operator[V, A]
	// sessions: per key, its sessions sorted by start
	sessions map[string][]Window
}

func (s *sessionKind[V, A]) restoreEntry(id winID, e entry) {
	s.o.register(id, e.end)
	// Restore's scan is in (key, start) order
	s.sessions[id.key] = append(s.sessions[id.key], Window{Start: id.start, End: e.end})
}

func (s *sessionKind[V, A]) restorePane([]byte, int64, entry) error { return s.o.errPanes() }

func (s *sessionKind[V, A]) add(key []byte, v V, ts int64) (Late, error) {
	o := s.o
	merged := Window{Start: ts, End: satAdd(ts, o.spec.Assigner.gap)}
	skey := string(key)
	list := s.sessions[skey] // sorted by start, disjoint
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
	s.sessions[skey] = slices.Replace(list, lo, hi, merged)
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

// drop removes the session of key starting at start from the index.
func (s *sessionKind[V, A]) drop(key string, start int64) {
	list := s.sessions[key]
	i := slices.IndexFunc(list, func(w Window) bool { return w.Start == start })
	if i < 0 {
		return
	}
	if list = slices.Delete(list, i, i+1); len(list) == 0 {
		delete(s.sessions, key)
	} else {
		s.sessions[key] = list
	}
}

func (s *sessionKind[V, A]) emitDue(emit func(Result[A]) error) ([]error, error) {
	return s.o.emitClosed(emit, s)
}

// emitWindow emits the session id as final and drops it from the index.
func (s *sessionKind[V, A]) emitWindow(_ int64, id winID, emit func(Result[A]) error) (emitErr, err error) {
	if emitErr, err = s.o.emitFinal(id, emit); err == nil {
		s.drop(id.key, id.start)
	}
	return emitErr, err
}
