package integration

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/windows"
)

// TestRepartitionClickCount runs builtin.ClickCount over 8 partitions of
// clicks whose record keys are random, so each user's clicks are spread
// over every input partition. The repartition topic and the output are
// keyed by user, in murmur2's partition for the user; each user's running
// counts are exactly 1..N in order, N being the user's clicks.
func TestRepartitionClickCount(t *testing.T) {
	t.Parallel()
	errs := capErrors(t)
	const (
		in, out = "clicks", "clicks-per-user"
		app     = "click-count"
		nUsers  = 40
		nClicks = 3000
	)
	c := newCluster(t)
	c.createTopic(in, 8)
	r := startEngine(t, c, builtin.ClickCount(in, out), app, nil)

	rng := rand.New(rand.NewPCG(1, 2))
	perUser := make(map[string]int)
	inParts := make(map[string]map[int32]bool)
	base := time.Now().Add(-time.Hour).UnixMilli()
	var recs []*kgo.Record
	for i := range nClicks {
		user := fmt.Sprintf("u%02d", rng.IntN(nUsers))
		perUser[user]++
		v, err := json.Marshal(builtin.Click{User: user, Page: fmt.Sprintf("/p/%d", i), TS: base + int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Appendf(nil, "%016x", rng.Uint64())
		recs = append(recs, &kgo.Record{Topic: in, Key: key, Value: v})
	}
	for _, rec := range c.produce(recs) {
		var cl builtin.Click
		json.Unmarshal(rec.Value, &cl) //nolint:errcheck // we encoded it
		if inParts[cl.User] == nil {
			inParts[cl.User] = make(map[int32]bool)
		}
		inParts[cl.User][rec.Partition] = true
	}
	spread := 0
	for _, ps := range inParts {
		if len(ps) > 1 {
			spread++
		}
	}
	if spread < nUsers/2 {
		t.Fatalf("only %d users have clicks in more than one input partition: the input does not exercise repartitioning", spread)
	}

	got := c.readOutput(app, r.e.Plan().SourceTopics(), out, nClicks)
	outParts := c.partitions(out)
	next := make(map[string]int64)
	for _, rec := range got {
		var uc builtin.UserCount
		if err := json.Unmarshal(rec.Value, &uc); err != nil {
			t.Fatalf("output value %q: %v", rec.Value, err)
		}
		user := string(rec.Key)
		if uc.Key != user {
			errs.Errorf("output keyed %q has value key %q", user, uc.Key)
		}
		if p := murmur2(out, rec.Key, outParts); rec.Partition != p {
			errs.Errorf("user %q in %s[%d], murmur2 picks %d", user, out, rec.Partition, p)
		}
		next[user]++
		if uc.Count != next[user] {
			errs.Errorf("user %q: count %d at %s[%d]@%d, want %d (running counts must be 1..N in order)", user, uc.Count, out, rec.Partition, rec.Offset, next[user])
			next[user] = uc.Count
		}
	}
	for user, n := range perUser {
		if next[user] != int64(n) {
			errs.Errorf("user %q: final count %d, want %d", user, next[user], n)
		}
	}
	if len(next) != len(perUser) {
		t.Errorf("%d users in the output, want %d", len(next), len(perUser))
	}

	// The repartition topic holds every click once, keyed by user, in the
	// user's murmur2 partition.
	// Everything committed in the repartition topic now: the upstream
	// sub-topology has consumed all its input, so no more data records
	// can come. Watermark control records (header windows.HeaderKey)
	// travel with the data and keep coming as watermarks move; they are
	// not clicks.
	rep := app + "-count-repartition"
	var reps []*kgo.Record
	all := c.consumeToEnd(rep)
	for _, rec := range all {
		if !slices.ContainsFunc(rec.Headers, func(h kgo.RecordHeader) bool { return h.Key == windows.HeaderKey }) {
			reps = append(reps, rec)
		}
	}
	if len(reps) != nClicks {
		t.Errorf("%s: %d data records, want %d", rep, len(reps), nClicks)
	}
	repParts := c.partitions(rep)
	if repParts != 8 {
		t.Errorf("%s has %d partitions, want 8 (the writing sub-topology's task count)", rep, repParts)
	}
	pages := make(map[string]bool)
	for _, rec := range reps {
		var cl builtin.Click
		if err := json.Unmarshal(rec.Value, &cl); err != nil {
			t.Fatalf("repartition value %q: %v", rec.Value, err)
		}
		if string(rec.Key) != cl.User {
			errs.Errorf("repartition record for user %q keyed %q", cl.User, rec.Key)
		}
		if p := murmur2(rep, rec.Key, repParts); rec.Partition != p {
			errs.Errorf("user %q in %s[%d], murmur2 picks %d", cl.User, rep, rec.Partition, p)
		}
		if pages[cl.Page] {
			errs.Errorf("click %q twice in %s", cl.Page, rep)
		}
		pages[cl.Page] = true
	}
}
