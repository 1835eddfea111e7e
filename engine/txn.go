package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Exactly-once (Config.Guarantee == ExactlyOnce) follows ../shared/DESIGN.md
// §3 with franz-go's GroupTransactSession, one transactional producer per
// process:
//
//   - the loop begins a transaction before it hands a batch to the tasks,
//     so every output, changelog record, control record and dead letter of
//     the batch is in it;
//   - a checkpoint ends it: it flushes, and aborts if any record of the
//     transaction failed (flush, then decide); otherwise the session
//     commits the consumed offsets in the transaction (TxnOffsetCommit
//     with the group generation, so a zombie is fenced), heartbeats, and
//     commits with EndTxn, or aborts when the group moved on meanwhile;
//   - only after a commit is state applied to Badger (applyState);
//   - after an abort the session has rewound the consumer to the committed
//     offsets, and the engine drops every task's dirty state and rebuilds
//     its operators from committed state (aborted), so the replayed records
//     meet exactly the state they met the first time.
//
// The transaction is never ended inside a rebalance callback (franz-go
// deadlocks). A rebalance the loop is blocking is signalled by
// OnPartitionsCallbackBlocked; the loop then ends its transaction before
// letting the rebalance in, so revocations find nothing in flight. A
// revocation (or loss) the session saw outside a transaction would still
// make it abort the next one (franz-go issue #754); resetStale clears that
// with an empty abort right after the poll during which it happened.

// resetStale clears a revoke or loss the session saw while no transaction
// was open. The empty abort rewinds the consumer to the committed offsets,
// so the batch polled alongside must be dropped (it is fetched again):
// processing it would read its records twice. It reports whether it reset.
func (e *Engine) resetStale(ctx context.Context) (bool, error) {
	if e.sess == nil || !e.staleRevoke {
		return false, nil
	}
	e.staleRevoke = false
	if _, err := e.sess.End(ctx, kgo.TryAbort); err != nil {
		return true, fmt.Errorf("engine: reset transaction session after a revoke: %w", err)
	}
	for _, t := range e.tasks {
		clear(t.pos) // rewound to the committed offsets
		t.dirty = false
	}
	return true, nil
}

// begin opens the transaction of the next batch, if none is open.
func (e *Engine) begin() error {
	if e.sess == nil || e.inTxn {
		return nil
	}
	if err := e.sess.Begin(); err != nil {
		return fmt.Errorf("engine: begin transaction: %w", err)
	}
	e.inTxn = true
	return nil
}

// endTxn commits the open transaction (or aborts it when a produce
// failed) and reports whether it committed. An error means the producer is
// unusable; the caller stops the engine (a restart recovers).
func (e *Engine) endTxn(ctx context.Context) (bool, error) {
	if !e.inTxn {
		return true, nil
	}
	// End waits for a heartbeat. If the member was lost meanwhile, the
	// heartbeat never comes (franz-go runs the lost callback only after
	// AllowRebalance, which the loop cannot call from inside End): the
	// watchdog in onBlocked cancels endCtx, End gives up, and the client
	// is recreated.
	// A member paused or cut off past its session may not hear anything
	// for a long time (dead connections), so End is also bounded outright.
	endCtx, cancel := context.WithTimeout(ctx, max(2*e.cfg.SessionTimeout, 10*time.Second))
	e.endCancel.Store(&cancel)
	// Flush, then decide: a record that fails while the transaction's
	// last records are flushed (End would flush them itself, after the
	// decision) must abort it, or its input offsets commit without it.
	if err := e.cl.Flush(endCtx); err != nil {
		e.endCancel.Store(nil)
		cancel()
		e.m.aborts.WithLabelValues("error").Inc()
		e.isolationEnded(false, nil)
		return false, fmt.Errorf("%w: end transaction: flush: %w", errRecreate, err)
	}
	try, cause := kgo.TryCommit, "rebalance"
	var produceErr error
	if p := e.produceErr.Load(); p != nil {
		try, cause, produceErr = kgo.TryAbort, "produce", *p
		e.log.Warn("aborting transaction", "err", produceErr)
	}
	committed, err := e.sess.End(endCtx, try)
	e.endCancel.Store(nil)
	cancel()
	e.inTxn = false
	if err != nil {
		e.m.aborts.WithLabelValues("error").Inc()
		e.isolationEnded(false, nil)
		return false, fmt.Errorf("%w: end transaction: %w", errRecreate, err)
	}
	e.isolationEnded(committed, produceErr)
	if !committed {
		e.m.aborts.WithLabelValues(cause).Inc()
		e.aborted()
	}
	return committed, nil
}

// aborted drops every task's uncommitted work after an aborted transaction:
// dirty state, changelog bookkeeping, positions, and the operators'
// in-memory state, rebuilt from committed state. The session has rewound
// the consumer to the committed offsets, so the records come again.
func (e *Engine) aborted() {
	e.produceErr.Store(nil)
	for _, t := range e.tasks {
		if t.st != nil {
			t.st.Discard()
			clear(t.lastChangelog)
		}
		clear(t.pos)
		t.dirty = false
		if err := e.buildRuntime(t); err != nil {
			err = fmt.Errorf("engine: task %s: rebuild after abort: %w", t.id, err)
			e.fatal.CompareAndSwap(nil, &err)
		}
	}
	e.log.Info("transaction aborted; replaying from the last committed offsets", "tasks", len(e.tasks))
}

// transactionalID is the application id plus an instance id kept in the
// state directory, so a restarted process reuses its transactional id and
// its first InitProducerID aborts whatever its previous life left open.
// A lock file in the directory keeps two processes from sharing it (they
// would fence each other).
func (e *Engine) transactionalID() (string, error) {
	if e.txnID != "" {
		return e.txnID, nil // a recreated client keeps its id (and the lock)
	}
	if err := os.MkdirAll(e.cfg.StateDir, 0o755); err != nil {
		return "", fmt.Errorf("engine: state dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(e.cfg.StateDir, "weir.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("engine: state dir: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return "", fmt.Errorf("engine: state dir %q is used by another process: give each process its own --state-dir", e.cfg.StateDir)
	}
	e.lock = lock // held until the process exits or Run returns
	path := filepath.Join(e.cfg.StateDir, "instance-id")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		r := make([]byte, 8)
		rand.Read(r) //nolint:errcheck // crypto/rand never fails on Linux
		b = []byte(hex.EncodeToString(r))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return "", fmt.Errorf("engine: state dir: %w", err)
		}
	} else if err != nil {
		return "", fmt.Errorf("engine: state dir: %w", err)
	}
	e.txnID = e.cfg.AppID + "-" + strings.TrimSpace(string(b))
	return e.txnID, nil
}

// onBlocked runs (on its own goroutine) when a rebalance waits for the loop:
// the loop ends its transaction before it lets the rebalance in. An End
// that is still running a second later is waiting for a heartbeat that the
// blocked rebalance prevents: cancel it.
func (e *Engine) onBlocked(context.Context, *kgo.Client) {
	e.rebalancing.Store(true)
	if c := e.endCancel.Load(); c != nil {
		time.AfterFunc(endWatchdog, *c)
	}
}

// endWatchdog is how long an End may run alongside a blocked rebalance.
const endWatchdog = time.Second

// errRecreate says the client is unusable; Run recreates it.
var errRecreate = errors.New("engine: client must be recreated")

// transactionTimeout bounds how long a transaction of a process that died
// blocks read_committed readers of its partitions: 10s, or four commit
// intervals when they are longer, so a live transaction never times out.
func (c *Config) transactionTimeout() time.Duration {
	return min(max(10*time.Second, 4*c.CommitInterval), 15*time.Minute) // Kafka caps it at 15m by default
}
