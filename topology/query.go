package topology

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/windows"
)

// StoreKind says how a queryable store's values are laid out, and so how
// the engine's queries read them.
type StoreKind string

const (
	// StoreRaw: one value per key, written with Store.Put in the value
	// serde's encoding (Count's store).
	StoreRaw StoreKind = "raw"
	// StoreValue: written by state.Value, Reducing or Aggregating.
	StoreValue StoreKind = "value"
	// StoreList: written by state.List.
	StoreList StoreKind = "list"
	// StoreMap: written by state.Map.
	StoreMap StoreKind = "map"
	// StoreWindow: an Aggregate's window store.
	StoreWindow StoreKind = "window"
)

// QueryTime is the time a query judges expiry at, in each TTL domain.
type QueryTime struct {
	// EventTime is the task's watermark as of its last applied
	// checkpoint; windows.Unknown when it is not known, and then no
	// event-time TTL has expired.
	EventTime int64
	// ProcessingTime is the wall clock, epoch ms.
	ProcessingTime int64
}

// StoreCodec lets the engine answer interactive queries on a store. Its
// functions read st, a read-only view of one task's committed store
// (state.DB.CommittedView), and are called on HTTP server goroutines.
type StoreCodec struct {
	Kind StoreKind
	// Key turns the key as written in a URL into store key bytes: the
	// text of a string key, else the JSON of the key.
	Key func(text string) ([]byte, error)
	// KeyJSON turns key bytes back into what encoding/json renders.
	KeyJSON func(b []byte) (any, error)
	// Get returns key's value, rendered for encoding/json, and false if
	// it has none (or only expired ones) at now.
	Get func(st state.Store, key []byte, now QueryTime) (v any, ok bool, err error)
	// Keys returns up to limit keys of st that start with prefix, from
	// key from on (inclusive; nil: the first), in the store's order. A
	// key it returns may have no live value.
	Keys func(st state.Store, prefix, from []byte, limit int) ([][]byte, error)
}

// QueryOpt configures a queryable store.
type QueryOpt interface{ applyQuery(*queryCfg) }

type queryCfg struct{ ttl state.TimeDomain }

type queryOptFunc func(*queryCfg)

func (f queryOptFunc) applyQuery(c *queryCfg) { f(c) }

// QueryTTL says the store's handle has a TTL in domain d, so that queries
// hide expired values: an event-time TTL is judged by the task's watermark
// as of its last applied checkpoint (nothing expires while it is
// unknown), a processing-time TTL by the wall clock. A query of a value
// with an expiry in a store declared without QueryTTL fails (HTTP 500)
// rather than serve a value that may have expired.
func QueryTTL(d state.TimeDomain) QueryOpt {
	return queryOptFunc(func(c *queryCfg) { c.ttl = d })
}

func addQuery(option, store string, c StoreCodec) Opt {
	return processOpt(option, func(oc *opCfg) {
		if oc.queries == nil {
			oc.queries = make(map[string]StoreCodec)
		}
		oc.queries[store] = c
	})
}

// Queryable makes a store of a Process operator that holds one value per
// key, written with Store.Put in vs's encoding, readable at the engine's
// GET /state/{store}/{key}: keys are the text of a string key or the JSON
// of any other key type. Count's store is queryable already. For a store
// written through a state handle, use QueryableValue, QueryableList or
// QueryableMap: the handles add an envelope that vs does not decode.
func Queryable[K, V any](store string, ks serde.Serde[K], vs serde.Serde[V]) Opt {
	c := keyCodec(StoreRaw, ks)
	c.Get = func(st state.Store, key []byte, _ QueryTime) (any, bool, error) {
		b, err := st.Get(key)
		if errors.Is(err, state.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		v, err := vs.Decode(b)
		if err != nil {
			return nil, false, fmt.Errorf("decode value: %w", err)
		}
		return v, true, nil
	}
	c.Keys = plainKeys
	return addQuery("Queryable", store, c)
}

// QueryableValue makes a store written by state.Value, state.Reducing or
// state.Aggregating (vs: the handle's serde) queryable: GET
// /state/{store}/{key} returns the key's value. Give QueryTTL if the
// handle has a TTL.
func QueryableValue[K, V any](store string, ks serde.Serde[K], vs serde.Serde[V], opts ...QueryOpt) Opt {
	q := queryCfgOf(opts)
	c := keyCodec(StoreValue, ks)
	c.Get = func(st state.Store, key []byte, now QueryTime) (any, bool, error) {
		p, ok, err := q.live(st, key, now)
		if err != nil || !ok {
			return nil, false, err
		}
		v, err := vs.Decode(p)
		if err != nil {
			return nil, false, fmt.Errorf("decode value: %w", err)
		}
		return v, true, nil
	}
	c.Keys = plainKeys
	return addQuery("QueryableValue", store, c)
}

// QueryableList makes a store written by state.List (vs: the element
// serde) queryable: GET /state/{store}/{key} returns the key's list.
// Give QueryTTL if the handle has a TTL.
func QueryableList[K, V any](store string, ks serde.Serde[K], vs serde.Serde[V], opts ...QueryOpt) Opt {
	q := queryCfgOf(opts)
	c := keyCodec(StoreList, ks)
	c.Get = func(st state.Store, key []byte, now QueryTime) (any, bool, error) {
		p, ok, err := q.live(st, key, now)
		if err != nil || !ok {
			return nil, false, err
		}
		elems, err := state.ListPayload(p)
		if err != nil {
			return nil, false, err
		}
		out := make([]V, 0, len(elems))
		for _, e := range elems {
			v, err := vs.Decode(e)
			if err != nil {
				return nil, false, fmt.Errorf("decode list element: %w", err)
			}
			out = append(out, v)
		}
		return out, true, nil
	}
	c.Keys = plainKeys
	return addQuery("QueryableList", store, c)
}

// MapEntry is one entry of a map in a query's answer.
type MapEntry struct {
	Key   any `json:"key"`
	Value any `json:"value"`
}

// QueryableMap makes a store written by state.Map (mk, mv: the handle's
// map-key and map-value serdes) queryable: GET /state/{store}/{key}
// returns the key's live map entries, in the byte order of their encoded
// map keys, as [{"key": ..., "value": ...}]. Give QueryTTL if the handle
// has a TTL.
func QueryableMap[K, MK, MV any](store string, ks serde.Serde[K], mk serde.Serde[MK], mv serde.Serde[MV], opts ...QueryOpt) Opt {
	q := queryCfgOf(opts)
	c := keyCodec(StoreMap, ks)
	c.Get = func(st state.Store, key []byte, now QueryTime) (any, bool, error) {
		prefix := state.MapPrefix(key)
		var out []MapEntry
		err := st.Scan(prefix, func(k, raw []byte) error {
			p, live, err := q.payload(raw, now)
			if err != nil || !live {
				return err
			}
			m, err := mk.Decode(bytes.Clone(k[len(prefix):]))
			if err != nil {
				return fmt.Errorf("decode map key: %w", err)
			}
			v, err := mv.Decode(p)
			if err != nil {
				return fmt.Errorf("decode map value: %w", err)
			}
			out = append(out, MapEntry{Key: m, Value: v})
			return nil
		})
		return out, err == nil && len(out) > 0, err
	}
	c.Keys = func(st state.Store, prefix, from []byte, limit int) ([][]byte, error) {
		var keys [][]byte
		visit := func(k, _ []byte) error {
			key, _, err := state.SplitMapKey(k)
			if err != nil {
				return err
			}
			if !bytes.HasPrefix(key, prefix) || (len(keys) > 0 && bytes.Equal(keys[len(keys)-1], key)) {
				return nil
			}
			if len(keys) == limit {
				return errEnoughKeys
			}
			keys = append(keys, bytes.Clone(key))
			return nil
		}
		err := scanFrom(st, nil, fromOrNil(from, state.MapPrefix), visit)
		return keys, err
	}
	return addQuery("QueryableMap", store, c)
}

// windowCodec is the query codec of an Aggregate's store: a key's value
// is its windows with state (windows.QueryKey).
func windowCodec[K, V, A any](spec windows.Spec, ks serde.Serde[K], acc serde.Serde[A], agg windows.Aggregation[V, A]) StoreCodec {
	c := keyCodec(StoreWindow, ks)
	c.Get = func(st state.Store, key []byte, _ QueryTime) (any, bool, error) {
		ws, err := windows.QueryKey(spec, acc, agg, st, key)
		if err != nil {
			return nil, false, err
		}
		out := make([]WindowValue[A], len(ws))
		for i, w := range ws {
			out[i] = WindowValue[A]{Start: w.Window.Start, End: w.Window.End, Value: w.Value}
		}
		return out, len(out) > 0, nil
	}
	c.Keys = windows.QueryKeys
	return c
}

// WindowValue is one window of a key in a query's answer.
type WindowValue[A any] struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	Value A     `json:"value"`
}

func queryCfgOf(opts []QueryOpt) queryCfg {
	var q queryCfg
	for _, o := range opts {
		o.applyQuery(&q)
	}
	return q
}

// payload returns the payload of a handle value and whether it is live at
// now.
func (q queryCfg) payload(raw []byte, now QueryTime) ([]byte, bool, error) {
	t, known := now.ProcessingTime, true
	if q.ttl == state.EventTime {
		t, known = now.EventTime, now.EventTime != windows.Unknown
	}
	return state.LivePayload(raw, q.ttl, t, known)
}

// live reads a handle value and returns its payload if it is live.
func (q queryCfg) live(st state.Store, key []byte, now QueryTime) ([]byte, bool, error) {
	raw, err := st.Get(key)
	if errors.Is(err, state.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return q.payload(raw, now)
}

func keyCodec[K any](kind StoreKind, ks serde.Serde[K]) StoreCodec {
	return StoreCodec{
		Kind: kind,
		Key: func(text string) ([]byte, error) {
			var k K
			if p, ok := any(&k).(*string); ok {
				*p = text
			} else if err := json.Unmarshal([]byte(text), &k); err != nil {
				return nil, fmt.Errorf("key %q is not JSON of %T: %w", text, k, err)
			}
			return ks.Encode(k)
		},
		KeyJSON: func(b []byte) (any, error) {
			k, err := ks.Decode(bytes.Clone(b))
			if err != nil {
				return nil, fmt.Errorf("decode key: %w", err)
			}
			return k, nil
		},
	}
}

var errEnoughKeys = errors.New("topology: enough keys")

// plainKeys is StoreCodec.Keys for stores whose keys are the keys.
func plainKeys(st state.Store, prefix, from []byte, limit int) ([][]byte, error) {
	var keys [][]byte
	err := scanFrom(st, prefix, from, func(k, _ []byte) error {
		if len(keys) == limit {
			return errEnoughKeys
		}
		keys = append(keys, bytes.Clone(k))
		return nil
	})
	return keys, err
}

func fromOrNil(from []byte, f func([]byte) []byte) []byte {
	if from == nil {
		return nil
	}
	return f(from)
}

// scanFrom scans st's keys with prefix from start on; errEnoughKeys from
// fn ends it without error.
func scanFrom(st state.Store, prefix, start []byte, fn func(k, v []byte) error) error {
	var err error
	if fs, ok := st.(state.FromScanner); ok {
		err = fs.ScanFrom(prefix, start, fn)
	} else {
		err = st.Scan(prefix, func(k, v []byte) error {
			if bytes.Compare(k, start) < 0 {
				return nil
			}
			return fn(k, v)
		})
	}
	if errors.Is(err, errEnoughKeys) {
		return nil
	}
	return err
}

// StoreCodec returns the query codec of a store, if it is queryable.
func (p *Plan) StoreCodec(store string) (StoreCodec, bool) {
	for _, n := range p.t.nodes {
		if c, ok := n.queries[store]; ok {
			return c, true
		}
	}
	return StoreCodec{}, false
}
