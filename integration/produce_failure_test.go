package integration

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/changelog"
	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/kafkaio"
)

// newFaultCluster starts a dev broker like newCluster and also returns its
// kfake cluster, to inject failures.
func newFaultCluster(t *testing.T) (*cluster, *kfake.Cluster) {
	log := testLogger(t)
	b, err := kafkaio.StartDevBroker(kafkaio.DevBrokerConfig{Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatalf("start dev broker: %v", err)
	}
	t.Cleanup(b.Close)
	c := connect(t, b.Addr())
	c.log = log
	return c, b.Cluster()
}

// createChangelog creates the changelog topic of store as the engine
// would, and returns its topic id: produce requests name topics by id.
func (c *cluster) createChangelog(app, store string, partitions int32) [16]byte {
	c.t.Helper()
	topic := changelog.Topic(app, store)
	resp, err := c.adm.CreateTopic(ctxFor(c.t, setupTimeout), partitions, 1, changelog.TopicConfigs(), topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		c.t.Fatalf("create topic %s: %v", topic, err)
	}
	return resp.ID
}

// producesTo reports whether a produce request writes to the topic named
// topic or with id id.
func producesTo(req kmsg.Request, topic string, id [16]byte) bool {
	for _, rt := range req.(*kmsg.ProduceRequest).Topics {
		if rt.Topic == topic || rt.TopicID == id {
			return true
		}
	}
	return false
}

// TestExactlyOnceFlushFailureAborts fails, once, the produce request that
// carries key-count's first changelog records with MESSAGE_TOO_LARGE (not
// retried), and answers it late, so the failure arrives while the
// checkpoint flushes its transaction. The transaction must abort and be
// replayed: each key's output is exactly 1..N and the changelog's last
// value of each key is N. Committing over the failure lost the request's
// records (changelog, and outputs sent with them) while their input
// offsets committed.
func TestExactlyOnceFlushFailureAborts(t *testing.T) {
	t.Parallel()
	const (
		in, out = "ff-in", "ff-out"
		app     = "eos-flush-failure"
		keys    = 40
	)
	c, kc := newFaultCluster(t)
	c.createTopic(in, 8)
	changes := changelog.Topic(app, "count-store")
	changesID := c.createChangelog(app, "count-store", 8)
	var failed atomic.Bool
	kc.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if req.(*kmsg.ProduceRequest).TransactionID == nil || !producesTo(req, changes, changesID) || !failed.CompareAndSwap(false, true) {
			return nil, nil, false
		}
		// Late: the checkpoint that produced the changelog records is
		// past its last look at earlier failures by now.
		kc.SleepControl(func() { time.Sleep(300 * time.Millisecond) })
		return eosFailed(req, kerr.MessageTooLarge.Code), nil, true
	})

	rng := rand.New(rand.NewPCG(71, 73))
	perKey := make(map[string]int64)
	c.produce(keyCountInput(rng, in, 2000, keys, perKey))
	r := startEngine(t, c, builtin.KeyCount(in, out), app, withState(engine.ExactlyOnce, t.TempDir()))
	if ok, left := eosWaitDrainedOK(c, app, outputTimeout, func() { failIfExited(t, r) }, in); !ok {
		t.Fatalf("group %s did not consume and commit all of %s within %v: %s", app, in, outputTimeout, left)
	}
	if !failed.Load() {
		t.Fatalf("no changelog produce request was failed")
	}
	checkOneToN(t, "after a failed flush", countSequences(t, c.readCommitted(out)), perKey)
	last := lastCounts(t, c.readCommitted(changes), nil)
	for k, n := range perKey {
		if last[k] != n {
			t.Errorf("changelog: key %q last count %d, want %d", k, last[k], n)
		}
	}
	m, err := eosScrape(r.e.HTTPAddr())
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	if n := m[`weir_transaction_aborts_total{cause="produce"}`]; n < 1 {
		t.Errorf("weir_transaction_aborts_total{cause=\"produce\"} = %v, want at least 1 (the failed flush)", n)
	}
	t.Logf("input records %d; aborts %s", total(perKey), fmt.Sprint(m[`weir_transaction_aborts_total{cause="produce"}`]))
}
