package builtin

import (
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

// KeyCount counts records per record key (UTF-8) and writes the running
// count, as a decimal string, to output each time it changes. Its state is
// the store "count-store".
func KeyCount(input, output string) *topology.Topology {
	t := topology.New()
	s := topology.Source(t, input, serde.String(), serde.Bytes(), topology.Named("source"))
	counts := topology.Count(s, topology.Named("count"))
	text := topology.MapValues(counts, func(_ string, n int64) (string, error) {
		return strconv.FormatInt(n, 10), nil
	}, topology.Named("format"))
	topology.To(topology.WithSerdes(text, serde.String(), serde.String()), output, topology.Named("sink"))
	return t
}
