package windows

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/weirstream/weir/state"
)

// countKind is the code of count windows: per key, every n records form
// a window, whose entry counts its records; the next window's start is in
// the key's count entry. A complete window awaits emission in ready.
type countKind[V, A any] struct {
	o     *Operator[V, A]
	ready map[winID]int64 // complete count windows awaiting emission: id -> end
}

func (c *countKind[V, A]) restoreEntry(id winID, e entry) {
	if e.flags&flagComplete != 0 {
		c.ready[id] = e.end
	}
}

func (c *countKind[V, A]) restorePane([]byte, int64, entry) error { return c.o.errPanes() }

func (c *countKind[V, A]) add(key []byte, v V, _ int64) (Late, error) {
	return Late{}, c.addCount(key, v)
}

func (c *countKind[V, A]) addCount(key []byte, v V) error {
	o := c.o
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
		c.ready[id] = end
		delete(o.dirty, id)
	} else if o.spec.Emit == EmitEarly {
		o.dirty[id] = end
	}
	return nil
}

// emitDue emits every complete window, in (End, key, Start) order.
func (c *countKind[V, A]) emitDue(emit func(Result[A]) error) (emitErrs []error, err error) {
	if len(c.ready) == 0 {
		return nil, nil
	}
	for _, he := range sortedIDs(c.ready) {
		emitErr, err := c.o.emitFinal(he.id, emit)
		if err != nil {
			return emitErrs, err
		}
		if emitErr != nil {
			emitErrs = append(emitErrs, emitErr)
		}
		delete(c.ready, he.id)
	}
	return emitErrs, nil
}
