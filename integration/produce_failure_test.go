package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
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

// createLimited creates topic with max.message.bytes set to limit: the
// broker rejects a record batch larger than that (MESSAGE_TOO_LARGE).
func (c *cluster) createLimited(topic string, partitions int32, limit int) {
	c.t.Helper()
	v := strconv.Itoa(limit)
	resp, err := c.adm.CreateTopic(ctxFor(c.t, setupTimeout), partitions, 1, map[string]*string{"max.message.bytes": &v}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		c.t.Fatalf("create topic %s: %v", topic, err)
	}
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

// TestExactlyOncePoisonOutputIsolated passes records through to an output
// topic whose max.message.bytes the broker enforces; a few records are too
// large for it, so their outputs are rejected (MESSAGE_TOO_LARGE) every
// time, and one is too large for the dead-letter topic as well. Each such
// record aborts its checkpoint: after a few aborts in a row the engine
// must isolate it and dead-letter it with the reason, instead of
// replaying the same transaction forever. Every other record's output is
// exact, each poison record is in "<app>-dlq" once (the one whose dead
// letter the broker rejects too, without its key, value and headers), and
// the aborts are bounded.
func TestExactlyOncePoisonOutputIsolated(t *testing.T) {
	t.Parallel()
	const (
		in, out  = "po-in", "po-out"
		app      = "eos-poison-output"
		parts    = 4
		nRecs    = 1200
		outLimit = 4096  // the output topic's max.message.bytes
		dlqLimit = 16384 // the dead-letter topic's
	)
	c := newCluster(t)
	c.createTopic(in, parts)
	c.createLimited(out, parts, outLimit)
	c.createLimited(engine.DLQTopic(app), 1, dlqLimit)

	type poison struct {
		rec  *kgo.Record
		bare bool // its dead letter is too large as well
	}
	rng := rand.New(rand.NewPCG(79, 83))
	var recs []*kgo.Record
	var want []kv
	var poisons []*poison
	for i := range nRecs {
		key := fmt.Sprintf("k%03d", i%97)
		rec := &kgo.Record{Topic: in, Key: []byte(key), Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(strconv.Itoa(i))}}}
		switch {
		case i%250 == 120:
			rec.Value = noise(rng, 2*outLimit) // incompressible: the broker limits compressed batches
			poisons = append(poisons, &poison{rec: rec})
		case i == 777:
			rec.Value = noise(rng, 2*dlqLimit)
			poisons = append(poisons, &poison{rec: rec, bare: true})
		default:
			rec.Value = fmt.Appendf(nil, "v%d", i)
			want = append(want, kv{key, string(rec.Value)})
		}
		recs = append(recs, rec)
	}
	c.produce(recs)
	r := startEngine(t, c, builtin.Passthrough(in, out), app, func(cfg *engine.Config) { cfg.SessionTimeout = sessionTimeout })
	if ok, left := eosWaitDrainedOK(c, app, 2*outputTimeout, func() { failIfExited(t, r) }, in); !ok {
		m, _ := eosScrape(r.e.HTTPAddr())
		t.Fatalf("group %s did not consume and commit all of %s within %v: %s; aborted transactions: %v", app, in, 2*outputTimeout, left, eosSum(m, "weir_transaction_aborts_total"))
	}
	sameMultiset(t, "good records' output", kvs(eosReadCommitted(t, c, out, outputTimeout)), want)

	type origin struct {
		partition int32
		offset    int64
	}
	byOrigin := make(map[origin]*poison)
	for _, p := range poisons {
		byOrigin[origin{p.rec.Partition, p.rec.Offset}] = p
	}
	for _, d := range eosReadCommitted(t, c, engine.DLQTopic(app), outputTimeout) {
		h := d.Headers
		if len(h) < 4 {
			t.Errorf("dlq %d: headers %s, want the four weir headers last", d.Offset, fmtHeaders(h))
			continue
		}
		weir := h[len(h)-4:]
		pt, perr := strconv.ParseInt(string(weir[2].Value), 10, 32)
		o, oerr := strconv.ParseInt(string(weir[3].Value), 10, 64)
		if perr != nil || oerr != nil {
			t.Errorf("dlq %d: headers %s: partition or offset is not a number", d.Offset, fmtHeaders(h))
			continue
		}
		at := origin{int32(pt), o}
		p, ok := byOrigin[at]
		if !ok {
			t.Errorf("dlq %d names %s[%d]@%d: not a poison record, or twice", d.Offset, in, pt, o)
			continue
		}
		delete(byOrigin, at)
		// The reason names the rejected output: the record's own
		// partition (passthrough keeps keys, and out has in's count).
		reasons := []string{fmt.Sprintf("engine: produce to %s[%d]: %s", out, murmur2(out, p.rec.Key, parts), kerr.MessageTooLarge.Message)}
		if p.bare {
			reasons = append(reasons, fmt.Sprintf("engine: produce to %s[0]: %s", engine.DLQTopic(app), kerr.MessageTooLarge.Message))
		}
		reasonsIn := func(s string) bool {
			for _, r := range reasons {
				if !strings.Contains(s, r) {
					return false
				}
			}
			return true
		}
		wantH := []kgo.RecordHeader{
			{Key: engine.HeaderSourceTopic, Value: []byte(in)},
			{Key: engine.HeaderSourcePartition, Value: []byte(strconv.Itoa(int(p.rec.Partition)))},
			{Key: engine.HeaderSourceOffset, Value: []byte(strconv.FormatInt(p.rec.Offset, 10))},
		}
		if !slices.EqualFunc(weir[1:], wantH, func(x, y kgo.RecordHeader) bool { return x.Key == y.Key && bytes.Equal(x.Value, y.Value) }) ||
			weir[0].Key != engine.HeaderError || !reasonsIn(string(weir[0].Value)) {
			t.Errorf("dlq for %s[%d]@%d: headers\n%swant %s containing %q, then\n%s", in, pt, o, fmtHeaders(h), engine.HeaderError, reasons, fmtHeaders(wantH))
		}
		wantKey, wantValue, wantOwn := p.rec.Key, p.rec.Value, p.rec.Headers
		if p.bare {
			wantKey, wantValue, wantOwn = nil, nil, nil
		}
		if !bytes.Equal(d.Key, wantKey) || !bytes.Equal(d.Value, wantValue) || len(h)-4 != len(wantOwn) {
			t.Errorf("dlq for %s[%d]@%d (bare %v): key %q, %d value bytes, %d headers of its own; want key %q, %d value bytes, %d headers", in, pt, o, p.bare, d.Key, len(d.Value), len(h)-4, wantKey, len(wantValue), len(wantOwn))
		}
	}
	for at := range byOrigin {
		t.Errorf("poison record %s[%d]@%d is not in %s", in, at.partition, at.offset, engine.DLQTopic(app))
	}

	m, err := eosScrape(r.e.HTTPAddr())
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	aborts := m[`weir_transaction_aborts_total{cause="produce"}`]
	// Each poison record aborts at least once. Bounded: per poison record
	// the aborts that start isolating (3), and twice log2 of the input
	// (11: halving the records of a transaction down to it, and the
	// halvings again after the bound has grown back), which covers its
	// identification and a rejected dead letter. Without isolation they
	// go on until the deadline (hundreds).
	if bound := float64(len(poisons) * (3 + 2*11)); aborts < float64(len(poisons)) || aborts > bound {
		t.Errorf("aborted transactions (produce) %v, want between %d and %v", aborts, len(poisons), bound)
	}
	if n, bare := m[`weir_isolated_records_total{outcome="dlq"}`], m[`weir_isolated_records_total{outcome="dlq_bare"}`]; n != float64(len(poisons)-1) || bare != 1 {
		t.Errorf("weir_isolated_records_total: dlq %v, dlq_bare %v; want %d and 1", n, bare, len(poisons)-1)
	}
	t.Logf("input records %d (%d poison); aborted transactions (produce) %v", nRecs, len(poisons), aborts)
}

// noise returns n random bytes.
func noise(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestExactlyOncePoisonOutputPolicies isolates a record whose output the
// broker always rejects under the other error policies: with skip it is
// skipped (counted, nothing in the dead-letter topic) and every other
// record's output is exact; with fail Run stops with an error naming it.
func TestExactlyOncePoisonOutputPolicies(t *testing.T) {
	t.Parallel()
	const (
		in, out  = "pp-in", "pp-out"
		parts    = 2
		nRecs    = 300
		outLimit = 4096
	)
	for _, policy := range []engine.ErrorPolicy{engine.OnErrorSkip, engine.OnErrorFail} {
		t.Run(string(policy), func(t *testing.T) {
			t.Parallel()
			app := "eos-poison-" + string(policy)
			c := newCluster(t)
			c.createTopic(in, parts)
			c.createLimited(out, parts, outLimit)
			rng := rand.New(rand.NewPCG(89, 97))
			var recs []*kgo.Record
			var want []kv
			var poison *kgo.Record
			for i := range nRecs {
				key := fmt.Sprintf("k%03d", i%31)
				rec := &kgo.Record{Topic: in, Key: []byte(key), Value: fmt.Appendf(nil, "v%d", i)}
				if i == 170 {
					rec.Value, poison = noise(rng, 2*outLimit), rec
				} else {
					want = append(want, kv{key, string(rec.Value)})
				}
				recs = append(recs, rec)
			}
			c.produce(recs)
			cfg := engine.DefaultConfig()
			cfg.Brokers, cfg.AppID, cfg.StateDir, cfg.OnError = []string{c.addr}, app, t.TempDir(), policy
			cfg.Logger = c.log
			e, err := engine.New(builtin.Passthrough(in, out), cfg)
			if err != nil {
				t.Fatalf("engine.New: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*outputTimeout)
			defer cancel()
			if policy == engine.OnErrorFail {
				err := e.Run(ctx)
				at := fmt.Sprintf("record %s/%d@%d: ", in, poison.Partition, poison.Offset)
				reason := fmt.Sprintf("engine: produce to %s[%d]: %s", out, murmur2(out, poison.Key, parts), kerr.MessageTooLarge.Message)
				if ctx.Err() != nil || err == nil || !strings.Contains(err.Error(), at) || !strings.Contains(err.Error(), reason) {
					t.Fatalf("Run returned %v (deadline passed: %v), want an error naming %q and %q", err, ctx.Err() != nil, at, reason)
				}
				t.Logf("Run: %v", err)
				return
			}
			done := make(chan error, 1)
			go func() { done <- e.Run(ctx) }()
			if ok, left := eosWaitDrainedOK(c, app, 2*outputTimeout, nil, in); !ok {
				t.Fatalf("group %s did not consume and commit all of %s: %s", app, in, left)
			}
			sameMultiset(t, "good records' output", kvs(eosReadCommitted(t, c, out, outputTimeout)), want)
			if dead := c.offsetsOf(engine.DLQTopic(app)); sumOffsets(dead) != 0 {
				t.Errorf("%s: end offsets %v, want nothing (skip)", engine.DLQTopic(app), dead)
			}
			m, err := eosScrape(e.HTTPAddr())
			if err != nil {
				t.Fatalf("metrics: %v", err)
			}
			if n := m[`weir_isolated_records_total{outcome="skipped"}`]; n != 1 {
				t.Errorf("weir_isolated_records_total{outcome=\"skipped\"} = %v, want 1", n)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
}

// TestAtLeastOncePoisonOutputStops checks at-least-once against the same
// poison record: it does not isolate, but a record whose output failed
// stops the engine before any offset past it is committed, so nothing is
// lost (a restart processes it again).
func TestAtLeastOncePoisonOutputStops(t *testing.T) {
	t.Parallel()
	const (
		in, out  = "ap-in", "ap-out"
		app      = "alo-poison"
		parts    = 2
		nRecs    = 300
		outLimit = 4096
	)
	c := newCluster(t)
	c.createTopic(in, parts)
	c.createLimited(out, parts, outLimit)
	rng := rand.New(rand.NewPCG(101, 103))
	var recs []*kgo.Record
	var poison *kgo.Record
	for i := range nRecs {
		rec := &kgo.Record{Topic: in, Key: fmt.Appendf(nil, "k%03d", i%31), Value: fmt.Appendf(nil, "v%d", i)}
		if i == 170 {
			rec.Value, poison = noise(rng, 2*outLimit), rec
		}
		recs = append(recs, rec)
	}
	c.produce(recs)
	cfg := engine.DefaultConfig()
	cfg.Brokers, cfg.AppID, cfg.StateDir, cfg.Guarantee = []string{c.addr}, app, t.TempDir(), engine.AtLeastOnce
	cfg.Logger = c.log
	e, err := engine.New(builtin.Passthrough(in, out), cfg)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*outputTimeout)
	defer cancel()
	err = e.Run(ctx)
	if ctx.Err() != nil || err == nil || !strings.Contains(err.Error(), kerr.MessageTooLarge.Message) {
		t.Fatalf("Run returned %v (deadline passed: %v), want the produce failure", err, ctx.Err() != nil)
	}
	if at := c.committedOf(app, in)[poison.Partition]; at > poison.Offset {
		t.Errorf("committed offset of %s[%d] is %d, past the record at %d whose output failed", in, poison.Partition, at, poison.Offset)
	}
}
