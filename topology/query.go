package topology

import (
	"encoding/json"
	"fmt"

	"github.com/weirstream/weir/serde"
)

// StoreCodec lets the engine answer interactive queries on a store: Key
// turns the key as written in a URL into store key bytes, Value turns a
// stored value into something encoding/json renders.
type StoreCodec struct {
	Key   func(text string) ([]byte, error)
	Value func(b []byte) (any, error)
}

// Queryable makes a store of a Process operator readable at the engine's
// GET /state/{store}/{key}: keys are the text of a string key or the JSON
// of any other key type, values are decoded with vs. Count's store is
// queryable already.
func Queryable[K, V any](store string, ks serde.Serde[K], vs serde.Serde[V]) Opt {
	return optFunc(func(c *opCfg) {
		if c.queries == nil {
			c.queries = make(map[string]StoreCodec)
		}
		c.queries[store] = codecOf(ks, vs)
	})
}

func codecOf[K, V any](ks serde.Serde[K], vs serde.Serde[V]) StoreCodec {
	return StoreCodec{
		Key: func(text string) ([]byte, error) {
			var k K
			if p, ok := any(&k).(*string); ok {
				*p = text
			} else if err := json.Unmarshal([]byte(text), &k); err != nil {
				return nil, fmt.Errorf("key %q is not JSON of %T: %w", text, k, err)
			}
			return ks.Encode(k)
		},
		Value: func(b []byte) (any, error) { return vs.Decode(b) },
	}
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
