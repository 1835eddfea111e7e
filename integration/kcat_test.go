package integration

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/builtin"
)

// TestIndependentReaderKcat checks a key-count output with kcat, a
// librdkafka client that shares no code with weir or franz-go: it reads
// the topic read_committed from the beginning, and sees exactly each key's
// running counts 1..N, each in the partition murmur2 picks for the key.
func TestIndependentReaderKcat(t *testing.T) {
	t.Parallel()
	errs := capErrors(t)
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed: the independent librdkafka reader is unavailable (apt-get install kcat): ", err)
	}
	const (
		in, out = "kcat-in", "kcat-counts"
		app     = "kcat-key-count"
		nKeys   = 30
		nRecs   = 900
	)
	c := newCluster(t)
	c.createTopic(in, 8)
	r := startEngine(t, c, builtin.KeyCount(in, out), app, nil)

	var recs []*kgo.Record
	perKey := make(map[string]int)
	var want []kv
	for i := range nRecs {
		k := fmt.Sprintf("user-%02d", (i*11)%nKeys)
		perKey[k]++
		want = append(want, kv{k, strconv.Itoa(perKey[k])})
		recs = append(recs, &kgo.Record{Topic: in, Key: []byte(k), Value: []byte("x")})
	}
	c.produce(recs)
	// Wait for the complete output with franz-go first, so that kcat reads
	// a topic that no longer changes.
	c.readOutput(app, r.e.Plan().SourceTopics(), out, nRecs)
	outParts := c.partitions(out)

	ctx, cancel := context.WithTimeout(context.Background(), outputTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-C", "-b", c.addr, "-t", out, "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%p\t%k\t%s\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, stderr.String())
	}
	var got []kv
	next := make(map[string]int)
	for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("kcat line %q: want partition, key and value", line)
		}
		p, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("kcat line %q: %v", line, err)
		}
		k, v := f[1], f[2]
		got = append(got, kv{k, v})
		if want := murmur2(out, []byte(k), outParts); int32(p) != want {
			errs.Errorf("kcat: key %q in partition %d, murmur2 picks %d", k, p, want)
		}
		// kcat prints each partition in offset order.
		next[k]++
		if v != strconv.Itoa(next[k]) {
			errs.Errorf("kcat: key %q: count %s, want %d", k, v, next[k])
			next[k], _ = strconv.Atoi(v)
		}
	}
	sameMultiset(t, "kcat output", got, want)
}
