package integration

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
)

// upperTopology keeps the records whose value does not end in "-drop" and
// upper-cases their values.
func upperTopology(in, out string) *topology.Topology {
	t := topology.New()
	s := topology.Source(t, in, serde.String(), serde.String(), topology.Named("source"))
	kept := topology.Filter(s, func(_, v string) bool { return !strings.HasSuffix(v, "-drop") }, topology.Named("keep"))
	upper := topology.MapValues(kept, func(_, v string) (string, error) { return strings.ToUpper(v), nil }, topology.Named("upper"))
	topology.To(topology.WithSerdes(upper, serde.String(), serde.String()), out, topology.Named("sink"))
	return t
}

// TestStatelessTopology runs Source→Filter→MapValues→To over 8 input
// partitions into a 5-partition output topic that exists beforehand: the
// output is exactly the kept records, upper-cased, each key's records in
// input order, each in the partition murmur2 picks for its key among the
// output's own partitions.
func TestStatelessTopology(t *testing.T) {
	t.Parallel()
	errs := capErrors(t)
	const (
		in, out = "words", "upper-words"
		app     = "stateless"
		nKeys   = 100
		nRecs   = 2000
	)
	c := newCluster(t)
	c.createTopic(in, 8)
	c.createTopic(out, 5)
	r := startEngine(t, c, upperTopology(in, out), app, nil)

	var recs []*kgo.Record
	var want []kv
	for i := range nRecs {
		key := fmt.Sprintf("key-%03d", i%nKeys)
		seq := i / nKeys
		v := fmt.Sprintf("v-%s-%04d", key, seq)
		if i%7 == 3 {
			v += "-drop"
		} else {
			want = append(want, kv{key, strings.ToUpper(v)})
		}
		recs = append(recs, &kgo.Record{Topic: in, Key: []byte(key), Value: []byte(v)})
	}
	c.produce(recs)

	got := c.readOutput(app, r.e.Plan().SourceTopics(), out, len(want))
	sameMultiset(t, "output", kvs(got), want)

	// Records are in partition then offset order: per key, that is the
	// order the engine wrote them.
	last := make(map[string]int)
	for _, rec := range got {
		k, v := string(rec.Key), string(rec.Value)
		if p := murmur2(out, rec.Key, 5); rec.Partition != p {
			errs.Errorf("key %q in %s[%d], murmur2 picks %d", k, out, rec.Partition, p)
		}
		seq, err := strconv.Atoi(v[strings.LastIndexByte(v, '-')+1:])
		if err != nil {
			t.Fatalf("value %q: %v", v, err)
		}
		if prev, ok := last[k]; ok && seq <= prev {
			errs.Errorf("key %q: record %d after %d: out of input order", k, seq, prev)
		}
		last[k] = seq
	}
}
