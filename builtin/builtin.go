package builtin

import (
	"errors"
	"strconv"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
)

// Passthrough copies every record of input to output unchanged (key, value,
// headers, timestamp).
func Passthrough(input, output string) *topology.Topology {
	t := topology.New()
	s := topology.Source(t, input, serde.Bytes(), serde.Bytes(), topology.Named("source"))
	topology.To(s, output, topology.Named("sink"))
	return t
}

// KeyCount counts records per record key and writes the running count, as
// a decimal string, to output each time it changes, keyed by the same key.
// Its state is the store "count-store".
//
// Its input contract: any record with a key; the key's bytes are the key
// (UTF-8 or not, empty or not: keys are compared byte by byte), and the
// value is ignored. A record without a key (null) goes to the error policy
// (the dead-letter topic by default) and is not counted: it would
// otherwise be counted with the empty key.
func KeyCount(input, output string) *topology.Topology {
	t := topology.New()
	s := topology.Source(t, input, presentKey{}, serde.Bytes(), topology.Named("source"))
	counts := topology.Count(s, topology.Named("count"))
	text := topology.MapValues(counts, func(_ string, n int64) (string, error) {
		return strconv.FormatInt(n, 10), nil
	}, topology.Named("format"))
	topology.To(topology.WithSerdes(text, serde.String(), serde.String()), output, topology.Named("sink"))
	return t
}

// presentKey is serde.String for keys that must be present: it refuses a
// null key, which serde.String decodes as "".
type presentKey struct{}

func (presentKey) Encode(k string) ([]byte, error) { return []byte(k), nil }

func (presentKey) Decode(b []byte) (string, error) {
	if b == nil {
		return "", &serde.DecodeError{Serde: "key-count key", Err: errors.New("record has no key (null), want a key to count by")}
	}
	return string(b), nil
}
