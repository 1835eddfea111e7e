package windows

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
)

// slicing reports whether an operator of spec and agg keeps panes (see
// "Store layout" in the package documentation).
func slicing[V, A any](spec Spec, agg Aggregation[V, A]) bool {
	return spec.Assigner.kind == KindHopping && spec.Assigner.size > spec.Assigner.advance &&
		spec.Emit == EmitFinal && agg.Commutative && agg.Merge != nil
}

// QueryKey returns the windows of key that hold state in store, which an
// Operator of spec, acc and agg wrote, in start order: the open windows
// and, for count windows, the complete ones not yet emitted. The value of
// a sliced operator's window is the merge of its panes (and of its own
// entry, if it has one from before the operator sliced), as Advance would
// emit it. QueryKey only reads store (a committed view, for interactive
// queries); it is called on the caller's goroutine and holds no lock.
func QueryKey[V, A any](spec Spec, acc serde.Serde[A], agg Aggregation[V, A], store state.Store, key []byte) ([]Result[A], error) {
	wm := int64(math.MinInt64)
	switch raw, err := store.Get(metaWatermarkKey); {
	case errors.Is(err, state.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("windows: query: %w", err)
	case len(raw) != 8:
		return nil, fmt.Errorf("%w: watermark entry of %d bytes", ErrCorruptState, len(raw))
	default:
		wm = int64(binary.BigEndian.Uint64(raw))
	}
	grace := spec.Grace.Milliseconds()
	if spec.Assigner.kind == KindCount {
		grace = 0
	}
	type win struct {
		end   int64
		whole []byte // the window's own entry's accumulator, nil if none
	}
	wins := make(map[int64]*win)
	type pane struct {
		start int64
		acc   []byte
	}
	var panes []pane
	sliced := slicing(spec, agg)
	scan := func(prefix byte, fn func(start int64, e entry) error) error {
		p := binary.BigEndian.AppendUint32([]byte{prefix}, uint32(len(key)))
		p = append(p, key...)
		return store.Scan(p, func(k, v []byte) error {
			_, start, err := decodeEntryKey(k)
			if err != nil {
				return err
			}
			e, err := decodeEntry(v)
			if err != nil {
				return err
			}
			return fn(start, e)
		})
	}
	err := scan(prefixEntry, func(start int64, e entry) error {
		wins[start] = &win{end: e.end, whole: bytes.Clone(e.acc)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("windows: query: %w", err)
	}
	var scratch []Window
	err = scan(prefixPane, func(start int64, e entry) error {
		if !sliced {
			return fmt.Errorf("%w: panes in the store of a %s operator that does not slice", ErrCorruptState, spec.Assigner.kind)
		}
		panes = append(panes, pane{start: start, acc: bytes.Clone(e.acc)})
		at := max(int64(e.count^signBit), wm)
		scratch = spec.Assigner.AppendWindows(scratch[:0], start)
		for _, w := range scratch {
			if _, ok := wins[w.Start]; ok || satAdd(w.End, grace) <= at {
				continue
			}
			wins[w.Start] = &win{end: w.End}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("windows: query: %w", err)
	}
	out := make([]Result[A], 0, len(wins))
	for _, start := range slices.Sorted(maps.Keys(wins)) {
		w := wins[start]
		var a A
		have := false
		if w.whole != nil {
			if a, err = acc.Decode(w.whole); err != nil {
				return nil, fmt.Errorf("windows: query: decode window [%d,%d): %w", start, w.end, err)
			}
			have = true
		}
		if sliced {
			for _, p := range panes { // in start order
				if p.start < start || p.start >= w.end {
					continue
				}
				pa, err := acc.Decode(p.acc)
				if err != nil {
					return nil, fmt.Errorf("windows: query: decode pane at %d: %w", p.start, err)
				}
				if have {
					a = agg.Merge(a, pa)
				} else {
					a, have = pa, true
				}
			}
		}
		if !have {
			return nil, fmt.Errorf("%w: window [%d,%d) has no panes", ErrCorruptState, start, w.end)
		}
		out = append(out, Result[A]{Key: bytes.Clone(key), Window: Window{Start: start, End: w.end}, Value: a})
	}
	return out, nil
}

var errEnough = errors.New("windows: enough keys")

// QueryKeys returns up to limit keys that have windows or panes in store,
// which an Operator wrote, from the key from on (inclusive; nil: the
// first), in the store's key order: by length, then bytes. Only keys
// starting with prefix count; the others are read and skipped.
func QueryKeys(store state.Store, prefix, from []byte, limit int) ([][]byte, error) {
	if limit <= 0 {
		return nil, nil
	}
	var lists [2][][]byte
	for i, p := range []byte{prefixEntry, prefixPane} {
		start := binary.BigEndian.AppendUint32([]byte{p}, uint32(len(from)))
		start = append(start, from...)
		visit := func(k, _ []byte) error {
			key, _, err := decodeEntryKey(k)
			if err != nil {
				return err
			}
			l := lists[i]
			if !bytes.HasPrefix(key, prefix) || (len(l) > 0 && bytes.Equal(l[len(l)-1], key)) {
				return nil
			}
			if len(l) == limit {
				return errEnough
			}
			lists[i] = append(l, bytes.Clone(key))
			return nil
		}
		var err error
		if fs, ok := store.(state.FromScanner); ok {
			err = fs.ScanFrom([]byte{p}, start, visit)
		} else {
			err = store.Scan([]byte{p}, func(k, v []byte) error {
				if bytes.Compare(k, start) < 0 {
					return nil
				}
				return visit(k, v)
			})
		}
		if err != nil && !errors.Is(err, errEnough) {
			return nil, fmt.Errorf("windows: query keys: %w", err)
		}
	}
	merged := append(lists[0], lists[1]...)
	slices.SortFunc(merged, CompareKeys)
	merged = slices.CompactFunc(merged, func(a, b []byte) bool { return bytes.Equal(a, b) })
	return merged[:min(limit, len(merged))], nil
}

// CompareKeys orders keys as a window store does: by length, then bytes.
func CompareKeys(a, b []byte) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return bytes.Compare(a, b)
}
