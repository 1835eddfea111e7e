package windows

// timeKind is the code of tumbling windows and of hopping windows that do
// not slice: each window has an entry of its own, which every record of
// the window updates.
type timeKind[V, A any] struct {
	o *Operator[V, A]
}

func (t *timeKind[V, A]) restoreEntry(id winID, e entry) { t.o.register(id, e.end) }

func (t *timeKind[V, A]) restorePane([]byte, int64, entry) error { return t.o.errPanes() }

func (t *timeKind[V, A]) add(key []byte, v V, ts int64) (Late, error) {
	o := t.o
	ws := o.spec.Assigner.AppendWindows(o.scratch[:0], ts)
	o.scratch = ws
	var late Late
	added := false
	for _, w := range ws {
		if o.closed(w.End, o.wm) {
			late.Windows = append(late.Windows, w)
			continue
		}
		if err := t.addTo(key, w, v); err != nil {
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
func (t *timeKind[V, A]) addTo(key []byte, w Window, v V) error {
	o := t.o
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
			o.register(id, w.End)
		}
		if o.spec.Emit == EmitEarly {
			o.dirty[id] = w.End
		}
	}
	return nil
}

func (t *timeKind[V, A]) emitDue(emit func(Result[A]) error) ([]error, error) {
	return t.o.emitClosed(emit, t)
}

func (t *timeKind[V, A]) emitWindow(_ int64, id winID, emit func(Result[A]) error) (emitErr, err error) {
	return t.o.emitFinal(id, emit)
}
