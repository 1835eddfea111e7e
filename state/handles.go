package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/weirstream/weir/serde"
)

// handleCfg is the configuration and shared logic of the typed handles.
type handleCfg struct {
	ttl    TTL
	clock  Clock
	hasTTL bool
	err    error // from an invalid option; returned by every method
}

func newHandleCfg(s Store, opts []HandleOpt) handleCfg {
	var c handleCfg
	for _, o := range opts {
		o.apply(&c)
	}
	if ss, ok := c.clock.(SweepScheduler); ok && c.hasTTL {
		ss.ScheduleSweep(s, c.ttl.domain)
	}
	return c
}

// read returns the payload under key, or ok=false if it is absent or
// expired; an expired value is deleted, a live one refreshed if the TTL
// says so. The payload is valid until the next call on s.
func (h *handleCfg) read(s Store, key []byte) (payload []byte, ok bool, err error) {
	if h.err != nil {
		return nil, false, h.err
	}
	raw, err := s.Get(key)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	payload, exp, has, err := decodeEnvelope(raw)
	if err != nil {
		return nil, false, err
	}
	if !h.hasTTL || !has {
		return payload, true, nil
	}
	if h.expired(exp) {
		if err := s.Delete(key); err != nil {
			return nil, false, err
		}
		return nil, false, nil
	}
	if env, ok := h.refreshed(payload, exp); ok {
		if err := s.Put(key, env); err != nil {
			return nil, false, err
		}
		return env[1+8:], true, nil
	}
	return payload, true, nil
}

// expired reports whether expiry exp has passed (never while the
// watermark of an event-time TTL is unknown).
func (h *handleCfg) expired(exp int64) bool {
	t, known := expiryTime(h.clock, h.ttl.domain)
	return known && t >= exp
}

// refreshed returns the envelope of payload with its expiry (exp)
// renewed by a read, if the TTL refreshes on read and the expiry moves.
func (h *handleCfg) refreshed(payload []byte, exp int64) ([]byte, bool) {
	if !h.ttl.refreshOnRead {
		return nil, false
	}
	t, ok := writeTime(h.clock, h.ttl.domain)
	if !ok {
		return nil, false
	}
	renewed := satAdd(t, h.ttl.after.Milliseconds())
	if renewed <= exp {
		return nil, false
	}
	return appendEnvelope(nil, renewed, true, payload), true
}

// write stores payload under key with the expiry a write now gets: from
// the write's time (see writeTime), and in event time never earlier than
// the value's current expiry, so that a record out of order does not
// shorten the life a later record gave it.
func (h *handleCfg) write(s Store, key, payload []byte) error {
	if h.err != nil {
		return h.err
	}
	if !h.hasTTL {
		return s.Put(key, appendEnvelope(nil, 0, false, payload))
	}
	t, ok := writeTime(h.clock, h.ttl.domain)
	if !ok {
		return ErrNoEventTime
	}
	exp := satAdd(t, h.ttl.after.Milliseconds())
	if h.ttl.domain == EventTime {
		raw, err := s.Get(key)
		switch {
		case err == nil:
			if _, old, has, err := decodeEnvelope(raw); err == nil && has && old > exp {
				exp = old
			}
		case !errors.Is(err, ErrNotFound):
			return err
		}
	}
	return s.Put(key, appendEnvelope(nil, exp, true, payload))
}

func (h *handleCfg) clear(s Store, key []byte) error {
	if h.err != nil {
		return h.err
	}
	return s.Delete(key)
}

// Value is a typed single value per key.
//
// Threading: as its Store (the task's goroutine only).
type Value[T any] struct {
	s  Store
	sd serde.Serde[T]
	h  handleCfg
}

// NewValue returns a Value over s that encodes values with sd. The store
// key is the key passed to each method, unchanged.
func NewValue[T any](s Store, sd serde.Serde[T], opts ...HandleOpt) *Value[T] {
	return &Value[T]{s: s, sd: sd, h: newHandleCfg(s, opts)}
}

// Get returns the value under key, and false if there is none (or it
// expired).
func (v *Value[T]) Get(key []byte) (T, bool, error) {
	var zero T
	p, ok, err := v.h.read(v.s, key)
	if err != nil || !ok {
		return zero, false, err
	}
	out, err := v.sd.Decode(p)
	if err != nil {
		return zero, false, fmt.Errorf("state: decode value: %w", err)
	}
	return out, true, nil
}

// Set sets the value under key (and refreshes its expiry).
func (v *Value[T]) Set(key []byte, val T) error {
	p, err := v.sd.Encode(val)
	if err != nil {
		return fmt.Errorf("state: encode value: %w", err)
	}
	return v.h.write(v.s, key, p)
}

// Clear deletes the value under key.
func (v *Value[T]) Clear(key []byte) error { return v.h.clear(v.s, key) }

// Map is a typed map per key. Every map entry is its own store entry under
// uvarint(len(key)) key encoded(mk), so Range is a prefix scan and the
// entries of key "a" never mix with those of key "ab". Range visits
// entries in the byte order of their encoded map keys.
//
// Threading: as its Store (the task's goroutine only).
type Map[MK, MV any] struct {
	s  Store
	mk serde.Serde[MK]
	mv serde.Serde[MV]
	h  handleCfg
}

// NewMap returns a Map over s with the given map-key and map-value serdes.
// A TTL applies to each map entry on its own.
func NewMap[MK, MV any](s Store, mk serde.Serde[MK], mv serde.Serde[MV], opts ...HandleOpt) *Map[MK, MV] {
	return &Map[MK, MV]{s: s, mk: mk, mv: mv, h: newHandleCfg(s, opts)}
}

func mapPrefix(key []byte) []byte {
	p := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(key)), uint64(len(key)))
	return append(p, key...)
}

func (m *Map[MK, MV]) entryKey(key []byte, mk MK) ([]byte, error) {
	enc, err := m.mk.Encode(mk)
	if err != nil {
		return nil, fmt.Errorf("state: encode map key: %w", err)
	}
	return append(mapPrefix(key), enc...), nil
}

// Get returns the value of map key mk under key, and false if absent.
func (m *Map[MK, MV]) Get(key []byte, mk MK) (MV, bool, error) {
	var zero MV
	if m.h.err != nil {
		return zero, false, m.h.err
	}
	k, err := m.entryKey(key, mk)
	if err != nil {
		return zero, false, err
	}
	p, ok, err := m.h.read(m.s, k)
	if err != nil || !ok {
		return zero, false, err
	}
	out, err := m.mv.Decode(p)
	if err != nil {
		return zero, false, fmt.Errorf("state: decode map value: %w", err)
	}
	return out, true, nil
}

// Put sets map key mk under key to mv.
func (m *Map[MK, MV]) Put(key []byte, mk MK, mv MV) error {
	if m.h.err != nil {
		return m.h.err
	}
	k, err := m.entryKey(key, mk)
	if err != nil {
		return err
	}
	p, err := m.mv.Encode(mv)
	if err != nil {
		return fmt.Errorf("state: encode map value: %w", err)
	}
	return m.h.write(m.s, k, p)
}

// Delete removes map key mk under key.
func (m *Map[MK, MV]) Delete(key []byte, mk MK) error {
	if m.h.err != nil {
		return m.h.err
	}
	k, err := m.entryKey(key, mk)
	if err != nil {
		return err
	}
	return m.s.Delete(k)
}

// Range calls fn for every live entry of the map under key, in the byte
// order of the encoded map keys. Expired entries are deleted, not visited
// (and, with RefreshOnRead, visited ones refreshed).
// The entries are read before fn is first called, so fn may modify the
// Map. An error from fn stops the walk and is returned.
func (m *Map[MK, MV]) Range(key []byte, fn func(mk MK, mv MV) error) error {
	if m.h.err != nil {
		return m.h.err
	}
	prefix := mapPrefix(key)
	type kv struct{ k, v []byte }
	var live, refresh []kv
	var expired [][]byte
	err := m.s.Scan(prefix, func(k, v []byte) error {
		p, exp, has, err := decodeEnvelope(v)
		if err != nil {
			return err
		}
		if m.h.hasTTL && has {
			if m.h.expired(exp) {
				expired = append(expired, bytes.Clone(k))
				return nil
			}
			if env, ok := m.h.refreshed(p, exp); ok {
				refresh = append(refresh, kv{bytes.Clone(k), env})
			}
		}
		live = append(live, kv{bytes.Clone(k[len(prefix):]), bytes.Clone(p)})
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range expired {
		if err := m.s.Delete(k); err != nil {
			return err
		}
	}
	for _, e := range refresh {
		if err := m.s.Put(e.k, e.v); err != nil {
			return err
		}
	}
	for _, e := range live {
		mk, err := m.mk.Decode(e.k)
		if err != nil {
			return fmt.Errorf("state: decode map key: %w", err)
		}
		mv, err := m.mv.Decode(e.v)
		if err != nil {
			return fmt.Errorf("state: decode map value: %w", err)
		}
		if err := fn(mk, mv); err != nil {
			return err
		}
	}
	return nil
}

// Clear removes every entry of the map under key.
func (m *Map[MK, MV]) Clear(key []byte) error {
	if m.h.err != nil {
		return m.h.err
	}
	var keys [][]byte
	if err := m.s.Scan(mapPrefix(key), func(k, _ []byte) error {
		keys = append(keys, bytes.Clone(k))
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := m.s.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// List is a typed list per key, stored as one value: the elements, each
// as uvarint(len) followed by its encoding. Append rewrites the value, so
// keep lists short (window buffers of a few hundred elements, not logs).
//
// Threading: as its Store (the task's goroutine only).
type List[T any] struct {
	s  Store
	sd serde.Serde[T]
	h  handleCfg
}

// NewList returns a List over s that encodes elements with sd. A TTL
// applies to the whole list and is refreshed by every Append.
func NewList[T any](s Store, sd serde.Serde[T], opts ...HandleOpt) *List[T] {
	return &List[T]{s: s, sd: sd, h: newHandleCfg(s, opts)}
}

// Get returns the list under key; nil if there is none.
func (l *List[T]) Get(key []byte) ([]T, error) {
	p, ok, err := l.h.read(l.s, key)
	if err != nil || !ok {
		return nil, err
	}
	elems, err := ListPayload(p)
	if err != nil {
		return nil, err
	}
	var out []T
	for _, e := range elems {
		v, err := l.sd.Decode(e)
		if err != nil {
			return nil, fmt.Errorf("state: decode list element: %w", err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Append adds v to the end of the list under key.
func (l *List[T]) Append(key []byte, v T) error {
	p, _, err := l.h.read(l.s, key)
	if err != nil {
		return err
	}
	enc, err := l.sd.Encode(v)
	if err != nil {
		return fmt.Errorf("state: encode list element: %w", err)
	}
	buf := make([]byte, 0, len(p)+binary.MaxVarintLen64+len(enc))
	buf = append(buf, p...)
	buf = binary.AppendUvarint(buf, uint64(len(enc)))
	buf = append(buf, enc...)
	return l.h.write(l.s, key, buf)
}

// Clear deletes the list under key.
func (l *List[T]) Clear(key []byte) error { return l.h.clear(l.s, key) }

// Reducing keeps one value per key, combining each added value with the
// current one by reduce(current, added).
//
// Threading: as its Store (the task's goroutine only).
type Reducing[T any] struct {
	v      *Value[T]
	reduce func(a, b T) T
}

// NewReducing returns a Reducing over s.
func NewReducing[T any](s Store, sd serde.Serde[T], reduce func(a, b T) T, opts ...HandleOpt) *Reducing[T] {
	return &Reducing[T]{v: NewValue(s, sd, opts...), reduce: reduce}
}

// Add combines v into the value under key.
func (r *Reducing[T]) Add(key []byte, v T) error {
	cur, ok, err := r.v.Get(key)
	if err != nil {
		return err
	}
	if ok {
		v = r.reduce(cur, v)
	}
	return r.v.Set(key, v)
}

// Get returns the reduced value under key, and false if there is none.
func (r *Reducing[T]) Get(key []byte) (T, bool, error) { return r.v.Get(key) }

// Clear deletes the value under key.
func (r *Reducing[T]) Clear(key []byte) error { return r.v.Clear(key) }

// Aggregating keeps one accumulator per key: the first Add starts from
// init(), and each Add folds its input in with add.
//
// Threading: as its Store (the task's goroutine only).
type Aggregating[IN, ACC any] struct {
	v    *Value[ACC]
	init func() ACC
	add  func(acc ACC, in IN) ACC
}

// NewAggregating returns an Aggregating over s; acc encodes the
// accumulator.
func NewAggregating[IN, ACC any](s Store, acc serde.Serde[ACC], init func() ACC, add func(acc ACC, in IN) ACC, opts ...HandleOpt) *Aggregating[IN, ACC] {
	return &Aggregating[IN, ACC]{v: NewValue(s, acc, opts...), init: init, add: add}
}

// Add folds in into the accumulator under key.
func (a *Aggregating[IN, ACC]) Add(key []byte, in IN) error {
	cur, ok, err := a.v.Get(key)
	if err != nil {
		return err
	}
	if !ok {
		cur = a.init()
	}
	return a.v.Set(key, a.add(cur, in))
}

// Get returns the accumulator under key, and false if there is none.
func (a *Aggregating[IN, ACC]) Get(key []byte) (ACC, bool, error) { return a.v.Get(key) }

// Clear deletes the accumulator under key.
func (a *Aggregating[IN, ACC]) Clear(key []byte) error { return a.v.Clear(key) }
