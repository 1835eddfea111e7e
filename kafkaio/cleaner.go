package kafkaio

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kfakeCleanerOff is a log.cleaner.backoff.ms so long (~31 years; it still
// fits a time.Duration) that kfake's own cleaner never runs.
const kfakeCleanerOff = "1000000000000"

// cleaner runs kfake's compaction safely. kfake's cleaner builds its
// key → newest-offset map from every batch but the partition's last,
// including batches of transactions that are still open: a committed value
// is dropped because an open transaction wrote the key again, and when that
// transaction aborts the key has no value at all. Kafka's cleaner stops at
// the first unstable offset; this one compacts only when no partition of a
// compacted topic has an open transaction (its last stable offset is its
// high watermark), and holds produce requests from the check until
// compaction is done, so no transaction can add records in between.
//
// Under steady transactional load every compacted partition is rarely
// stable at once, so compaction may wait until the applications are idle:
// changelogs grow meanwhile, which costs restore time, never correctness.
//
// Goroutines: run (its own), started by startCleaner; Compact may also be
// called from any goroutine; compactions are serialized by mu.
type cleaner struct {
	c       *kfake.Cluster
	kcl     *kgo.Client
	adm     *kadm.Client
	log     *slog.Logger
	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	stopped sync.Once

	gateMu        sync.Mutex
	gate          chan struct{}  // non-nil while produce requests are held
	gateInstalled bool           // gateProduce is registered with kfake
	parked        sync.WaitGroup // produce requests parked by gateProduce

	ran, skipped atomic.Int64
	// ends are the compacted partitions' high watermarks after the last
	// compaction (nil before the first); guarded by mu.
	ends map[string][]int64
}

// startCleaner starts the cleaner's goroutine (none if every <= 0). addr is
// the address the broker listens on; the cleaner's client dials it whatever
// address the broker advertises.
func startCleaner(c *kfake.Cluster, addr string, every time.Duration, log *slog.Logger) (*cleaner, error) {
	kcl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.Dialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}))
	if err != nil {
		return nil, fmt.Errorf("cleaner client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cl := &cleaner{c: c, kcl: kcl, adm: kadm.NewClient(kcl), log: log, cancel: cancel, done: make(chan struct{})}
	if every > 0 {
		go cl.run(ctx, every)
	} else {
		close(cl.done)
	}
	return cl, nil
}

// stop ends the goroutine and closes the client; it is idempotent. It must
// run before the cluster closes (kfake's admin calls block after Close).
func (cl *cleaner) stop() {
	cl.stopped.Do(func() {
		cl.cancel()
		<-cl.done
		cl.kcl.Close()
	})
}

func (cl *cleaner) run(ctx context.Context, every time.Duration) {
	defer close(cl.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Transactions are short: a round tries for a couple of
		// seconds before it waits for the next tick.
		for range 20 {
			ran, err := cl.compact(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				cl.log.Warn("dev broker: log cleaner", "err", err)
				break
			}
			if ran {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// compact runs kfake's compaction and retention if no partition of a
// compacted topic has an open transaction, and reports whether it ran (or
// had nothing to do: nothing was written to a compacted topic since the
// last compaction).
func (cl *cleaner) compact(ctx context.Context) (bool, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	release := cl.holdProduces()
	defer release()
	// Every produce handled before holdProduces returned is in the
	// partitions' offsets below (kfake handles requests one at a time);
	// every later one waits. Topics created from here on are empty.
	topics, err := cl.adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return false, fmt.Errorf("list topics: %w", err)
	}
	parts := make(map[string][]int32) // compacted topics' partitions
	ends := make(map[string][]int64)
	for _, name := range topics.Names() {
		ti := cl.c.TopicInfo(name)
		if ti == nil || !compacted(ti.Configs) {
			continue
		}
		for _, p := range cl.c.PartitionInfos(name) {
			if p.LastStableOffset < p.HighWatermark {
				cl.skipped.Add(1)
				return false, nil
			}
			parts[name] = append(parts[name], p.Partition)
			ends[name] = append(ends[name], p.HighWatermark)
		}
	}
	if cl.ends != nil && maps.EqualFunc(ends, cl.ends, slices.Equal) {
		return true, nil // nothing written since the last compaction
	}
	cl.c.Compact()
	if err := cl.remark(ctx, parts); err != nil {
		return true, err
	}
	cl.ends = make(map[string][]int64, len(parts))
	for name := range parts {
		for _, p := range cl.c.PartitionInfos(name) {
			cl.ends[name] = append(cl.ends[name], p.HighWatermark)
		}
	}
	cl.ran.Add(1)
	return true, nil
}

// remark writes, after a compaction and before any produce, an abort marker
// for every transactional producer on every compacted partition. kfake's
// compaction drops an aborted transaction's marker when the producer has
// no record left in the cleaned part of the log, but keeps the aborted
// transaction in its index; a read_committed reader is then told the
// producer's transaction aborted, skips the producer's records until its
// next abort marker, and would skip its next commits. A marker for a
// producer with nothing aborted pending is ignored by readers (a marker
// ends an abort only at or after that abort's first offset).
func (cl *cleaner) remark(ctx context.Context, parts map[string][]int32) error {
	if len(parts) == 0 {
		return nil
	}
	listed, err := cl.adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("list transactions: %w", err)
	}
	if len(listed) == 0 {
		return nil
	}
	described, err := cl.adm.DescribeTransactions(ctx, listed.TransactionalIDs()...)
	if err != nil {
		return fmt.Errorf("describe transactions: %w", err)
	}
	byProducer := make(map[producerEpoch]map[string][]int32)
	for _, d := range described {
		if d.Err != nil {
			return fmt.Errorf("describe transaction %s: %w", d.TxnID, d.Err)
		}
		byProducer[producerEpoch{d.ProducerID, d.ProducerEpoch}] = parts
	}
	return writeAbortMarkers(ctx, cl.kcl, byProducer)
}

// holdProduces makes produce requests wait until release is called. The
// control function runs on kfake's request path; SleepControl parks the
// request while kfake goes on serving others (and admin calls). A parked
// request is let go when its round ends, and holdProduces first waits
// until every request parked by the previous round has been let go:
// kfake handles a request it lets go before reading its next request (the
// cleaner's list of topics), so before any check. (A request never sleeps
// twice: kfake's bookkeeping of a second sleep in one control function
// races.) One control function stays registered until a produce request
// finds no gate, so rounds without produce requests do not pile them up.
func (cl *cleaner) holdProduces() (release func()) {
	cl.parked.Wait() // no request parks while the gate is down
	gate := make(chan struct{})
	cl.gateMu.Lock()
	cl.gate = gate
	if !cl.gateInstalled {
		cl.gateInstalled = true
		cl.c.ControlKey(int16(kmsg.Produce), cl.gateProduce)
	}
	cl.gateMu.Unlock()
	return func() {
		cl.gateMu.Lock()
		cl.gate = nil
		cl.gateMu.Unlock()
		close(gate)
	}
}

// gateProduce is the control function (kfake runs it on a goroutine of its
// own per request, one at a time).
func (cl *cleaner) gateProduce(kmsg.Request) (kmsg.Response, error, bool) {
	cl.gateMu.Lock()
	gate := cl.gate
	if gate == nil {
		cl.gateInstalled = false
		cl.c.DropControl()
		cl.gateMu.Unlock()
		return nil, nil, false // kfake handles the request as usual
	}
	cl.parked.Add(1)
	cl.gateMu.Unlock()
	cl.c.SleepControl(func() { <-gate })
	cl.parked.Done()
	return nil, nil, false
}

func compacted(configs map[string]*string) bool {
	v := configs["cleanup.policy"]
	return v != nil && strings.Contains(*v, "compact")
}
