package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"

	"github.com/weirstream/weir/changelog"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// Engine runs a topology as one member of the application's consumer group.
// Start several processes (or Engines) with the same AppID to share the
// work; Kafka's group protocol spreads the partitions, and so the tasks.
type Engine struct {
	cfg  Config
	plan *topology.Plan
	log  *slog.Logger
	m    *metrics

	// Set by Run before the group is joined; read-only afterwards.
	cl  *kgo.Client
	adm *kadm.Client
	sb  *standbys // nil without standby replicas
	// clientID names this process to Kafka; member is the current group
	// client for other goroutines (the standby placement), as the loop may
	// recreate it.
	clientID string
	member   atomic.Pointer[kgo.Client]
	// sess is the transactional session (exactly-once), nil otherwise;
	// inTxn and staleRevoke belong to the group-turn owner.
	sess        *kgo.GroupTransactSession
	inTxn       bool
	staleRevoke bool
	rebalancing atomic.Bool                        // a rebalance waits for the loop
	endCancel   atomic.Pointer[context.CancelFunc] // cancels a running End (watchdog)
	lock        *os.File                           // the state directory's lock (exactly-once)
	txnID       string
	// changelogStore maps changelog topics to their stores.
	changelogStore map[string]string
	lay            *layout
	out            map[string]*outCounter // records_out per topic, built once
	// repartition holds the repartition topics this process reads: their
	// watermark control records are not counted as input.
	repartition map[string]bool

	// tasks and byTP belong to whoever holds the group "turn": the
	// processing loop between PollRecords and AllowRebalance, or a
	// rebalance callback. BlockRebalanceOnPoll makes those exclusive
	// (franz-go gates polls and callbacks against each other), so no lock
	// is needed; see DESIGN notes, "goroutine ownership".
	tasks map[topology.TaskID]*task
	byTP  map[tp]*task

	// db is the process's state (nil for a stateless topology); released
	// holds, per task id with local state, since when this process has
	// not owned it. Both belong to the group-turn owner, like tasks.
	db       *state.DB
	released map[string]time.Time
	// cpID numbers checkpoints; force asks the loop for one early (a
	// task's write cache is full).
	cpID    uint64
	force   bool
	sinceCP int // input records since the last committed checkpoint

	// iso isolates a record that keeps making its checkpoint abort
	// (exactly-once); see isolation.
	iso isolation

	produceErr atomic.Pointer[error]
	fatal      atomic.Pointer[error] // set by callbacks, returned by the loop
	ready      atomic.Bool
	httpAddr   atomic.Pointer[string]

	snapMu sync.Mutex
	snap   []TaskInfo // published by the owner of tasks, read by HTTP
	// committedWM is each stateful task's watermark as of its last
	// applied checkpoint (by task id), for queries to judge event-time
	// TTLs; published by applyState.
	committedWM map[string]int64

	stalls stallWatch // input partitions with a stuck LSO (stall.go); the loop's
}

type tp struct {
	topic     string
	partition int32
}

// task is the engine's side of one task: the runtime operators, the
// positions to commit and the task's state stores.
type task struct {
	id  topology.TaskID
	rt  *topology.Task
	pos map[string]kgo.EpochOffset // topic -> next offset to process (partition = id.Partition)
	// dirty says pos moved since the last checkpoint.
	dirty bool
	// st is the task's state (write cache over Badger), nil when the
	// sub-topology has no stores. changelogs holds, per store, the next
	// changelog offset after the last applied checkpoint; lastChangelog
	// the last changelog record produced since.
	st            *state.Task
	changelogs    map[string]int64
	lastChangelog map[string]*kgo.Record
	sub           *topology.Subtopology
	// watermarks are the task's watermarks as of its last committed
	// checkpoint (from its checkpoint record when it starts): a runtime
	// rebuilt after an abort starts from them. Without them a stateless
	// task whose input has gone quiet would announce no watermark at all
	// downstream until new input came.
	watermarks []state.Watermark
	// shownWM is the watermark the metric shows (a rebuilt runtime may
	// start lower than the one it replaces).
	shownWM int64
}

// New validates the configuration and the topology. It does not contact
// Kafka; Run does.
func New(t *topology.Topology, cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	plan, err := t.Build(cfg.AppID)
	if err != nil {
		return nil, err
	}
	return &Engine{
		cfg:      cfg,
		plan:     plan,
		log:      cfg.logger().With("app", cfg.AppID),
		m:        newMetrics(),
		tasks:    make(map[topology.TaskID]*task),
		byTP:     make(map[tp]*task),
		released: make(map[string]time.Time),
	}, nil
}

// Plan returns the engine's topology plan.
func (e *Engine) Plan() *topology.Plan { return e.plan }

// HTTPAddr returns the address the HTTP server listens on, once Run has
// started it ("" before, or when disabled).
func (e *Engine) HTTPAddr() string {
	if p := e.httpAddr.Load(); p != nil {
		return *p
	}
	return ""
}

// Ready reports whether the engine has joined its group and runs tasks.
func (e *Engine) Ready() bool { return e.ready.Load() }

// Run joins the group and processes records until ctx is cancelled or a
// fatal error occurs. On cancellation it stops at a batch boundary, runs a
// last checkpoint (committing what was processed), leaves the group and
// returns nil. Run owns every goroutine it starts and returns only after
// they have exited. An Engine runs once.
func (e *Engine) Run(ctx context.Context) error {
	// Shutdown order, the reverse of start:
	//  1. the loop returns at a batch boundary (ctx cancelled or fatal);
	//  2. a final checkpoint commits what was processed;
	//  3. the client leaves the group (revoke callback: nothing left);
	//  4. the HTTP server stops; Run returns when every goroutine is done.
	adm, err := kadm.NewOptClient(e.clientOpts()...)
	if err != nil {
		return fmt.Errorf("engine: admin client: %w", err)
	}
	defer adm.Close()
	e.adm = adm
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	e.lay, err = e.setup(setupCtx, adm)
	cancel()
	if err != nil {
		return err
	}
	if err := e.openState(); err != nil {
		return err
	}
	defer func() {
		if e.lock != nil {
			e.lock.Close()
		}
	}()
	defer func() {
		if e.db != nil {
			if err := e.db.Close(); err != nil {
				e.log.Warn("closing state", "err", err)
			}
		}
	}()
	e.changelogStore = make(map[string]string)
	for store := range e.plan.Stores() {
		e.changelogStore[changelog.Topic(e.cfg.AppID, store)] = store
	}
	e.out = make(map[string]*outCounter)
	e.repartition = make(map[string]bool)
	for _, st := range e.plan.Subtopologies {
		for _, s := range st.Sinks {
			o := &outCounter{data: e.m.recordsOut.WithLabelValues(s.Topic)}
			if s.Internal {
				o.control = e.m.controlsOut.WithLabelValues(s.Topic)
			}
			e.out[s.Topic] = o
		}
		for _, s := range st.Sources {
			if s.Internal {
				e.repartition[s.Topic] = true
			}
		}
	}
	for _, topic := range []string{DLQTopic(e.cfg.AppID), topology.LateTopic(e.cfg.AppID)} {
		e.out[topic] = &outCounter{data: e.m.recordsOut.WithLabelValues(topic)}
	}

	g, gctx := errgroup.WithContext(ctx)
	var srv *http.Server
	clientID := "weir"
	if e.cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", e.cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("engine: http: %w (pick another --http address)", err)
		}
		addr := ln.Addr().String()
		e.httpAddr.Store(&addr)
		clientID = clientIDPrefix + reachable(addr)
		srv = &http.Server{Handler: e.handler(), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("engine: http: %w", err)
			}
			return nil
		})
		e.log.Info("http server listening", "addr", "http://"+addr)
	}

	e.clientID = clientID
	if err := e.newClient(); err != nil {
		if srv != nil {
			srv.Close()
		}
		g.Wait() //nolint:errcheck // the server's error is ErrServerClosed
		return err
	}

	if e.cfg.StandbyReplicas > 0 && e.db != nil {
		e.sb = newStandbys(e)
		g.Go(func() error { return e.sb.run(gctx) })
	}
	g.Go(func() error {
		err := e.loop(gctx)
		for recreated := []time.Time{}; errors.Is(err, errRecreate) && gctx.Err() == nil; {
			// The producer is unusable (fenced, or its transaction's end
			// is unknown): a new client with the same transactional id
			// aborts whatever is open, and rejoins the group. A client
			// that keeps failing is a fault to report, not to loop on.
			recreated = append(recreated, time.Now())
			if len(recreated) > 5 && time.Since(recreated[len(recreated)-6]) < time.Minute {
				break
			}
			e.log.Warn("recreating the Kafka client", "err", err)
			e.closeClient()
			if err = e.newClient(); err == nil {
				err = e.loop(gctx)
			}
		}
		e.shutdown()
		if srv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			srv.Shutdown(sctx) //nolint:errcheck // best effort on the way out
			cancel()
		}
		return err
	})
	return g.Wait()
}

// loop is the processing loop: poll a batch, run it through the tasks, take
// a checkpoint when due, let a pending rebalance in, repeat.
func (e *Engine) loop(ctx context.Context) error {
	e.log.Info("joining group", "brokers", e.cfg.Brokers, "topics", e.plan.SourceTopics())
	lastCheckpoint, lastCleanup := time.Now(), time.Now()
	for {
		// Poll at most until the next checkpoint is due, so that
		// checkpoints and idle-driven watermarks advance without input.
		pollCtx, cancel := context.WithDeadline(ctx, lastCheckpoint.Add(e.cfg.CommitInterval))
		fetches := e.cl.PollRecords(pollCtx, e.pollLimit())
		cancel()
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return e.finalCheckpoint()
		}
		if p := e.fatal.Load(); p != nil {
			e.cl.AllowRebalance()
			return *p
		}
		if reset, err := e.resetStale(ctx); err != nil || reset {
			e.cl.AllowRebalance()
			if err != nil {
				return err
			}
			continue
		}
		fatal := e.begin()
		if fatal == nil {
			fatal = e.processFetches(fetches)
		}
		e.watchStalls(fetches, time.Now())
		if fatal == nil {
			fatal = e.advance()
		}
		if fatal == nil && e.sess == nil {
			fatal = e.producerFailed() // exactly-once aborts instead, at the checkpoint
		}
		if fatal != nil {
			e.cl.AllowRebalance()
			return fatal
		}
		if e.force || e.isolationDue() || e.rebalancing.Swap(false) || time.Since(lastCheckpoint) >= e.cfg.CommitInterval {
			if err := e.checkpoint(ctx); err != nil {
				e.cl.AllowRebalance()
				if ctx.Err() != nil {
					return e.finalCheckpoint()
				}
				return err
			}
			lastCheckpoint = time.Now()
		}
		if e.db != nil && time.Since(lastCleanup) >= time.Minute {
			e.dropStale(time.Now())
			lastCleanup = time.Now()
		}
		e.cl.AllowRebalance()
	}
}

// processFetches runs a polled batch through the tasks. It returns only
// fatal errors.
func (e *Engine) processFetches(fetches kgo.Fetches) error {
	var fatal error
	fetches.EachError(func(topic string, p int32, err error) {
		switch {
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		case errors.Is(err, kerr.InvalidSessionTimeout):
			fatal = fmt.Errorf("engine: the broker rejects session timeout %v: %w (set --session-timeout within the broker's group.min/max.session.timeout.ms)", e.cfg.SessionTimeout, err)
		case errors.Is(err, kerr.GroupAuthorizationFailed) || errors.Is(err, kerr.TopicAuthorizationFailed):
			fatal = fmt.Errorf("engine: not authorized: %w (check the ACLs of this client)", err)
		default:
			e.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
		}
	})
	if fatal != nil {
		return fatal
	}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if fatal != nil || p.Err != nil {
			return
		}
		t := e.byTP[tp{p.Topic, p.Partition}]
		if t == nil {
			// Cannot happen: franz-go returns no records of a
			// partition after its revoke callback ran.
			fatal = fmt.Errorf("engine: records for partition %s/%d that no task owns", p.Topic, p.Partition)
			return
		}
		// Transaction markers (kept, KeepControlRecords) only move the
		// position; the engine's watermark control records on
		// repartition topics go to the task but are not data.
		var last *kgo.Record
		data, processed := 0, 0
		rep := e.repartition[p.Topic]
		for _, rec := range p.Records {
			if rec.Attrs.IsControl() {
				continue
			}
			if !rep || !isControl(rec) {
				data++
			}
			if err := e.process(t, rec); err != nil {
				fatal = err
				return
			}
			last = rec
			processed++
		}
		if n := len(p.Records); n > 0 {
			// The lag counts from the position after the last record,
			// marker or not (a partition written in transactions
			// ends with a commit marker), to the last stable offset:
			// records of open transactions cannot be read yet (as
			// Java's consumer does for read_committed).
			end := p.LastStableOffset
			if end < 0 {
				end = p.HighWatermark
			}
			e.m.setLag(p.Topic, p.Partition, max(end-(p.Records[n-1].Offset+1), 0))
		}
		if last == nil {
			// An empty fetch (or one of markers only) means the
			// position reached the end.
			t.rt.SetCaughtUp(p.Topic, true)
			return
		}
		if e.sess != nil {
			e.iso.txnRecs += processed
			e.iso.last = last
		}
		next := last.Offset + 1
		t.pos[p.Topic] = kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: next}
		t.dirty = true
		t.rt.SetCaughtUp(p.Topic, next >= p.LastStableOffset)
		if t.st != nil && t.st.Full() {
			e.force = true
		}
		e.m.recordsIn.WithLabelValues(p.Topic).Add(float64(data))
		e.sinceCP += data
	})
	return fatal
}

// advance moves every task's watermark, emitting the windows it closes.
func (e *Engine) advance() error {
	now := time.Now()
	for _, t := range e.tasks {
		wm, err := t.rt.Advance(now)
		if err != nil {
			for _, f := range t.rt.Failures(err) {
				if f.Record == nil {
					return fmt.Errorf("engine: task %s: advance watermark: %w", t.id, f.Err)
				}
				if err := e.policy(t, f.Record, f.Err); err != nil {
					return err
				}
			}
		}
		if wm != t.shownWM {
			t.shownWM = wm
			if wm == windows.Unknown {
				e.m.watermark.DeleteLabelValues(t.id.String()) // absent until known
			} else {
				e.m.watermark.WithLabelValues(t.id.String()).Set(float64(wm))
			}
		}
	}
	return nil
}

// process runs one record through its task and applies the error policy to
// a bad record. It returns only fatal errors.
func (e *Engine) process(t *task, rec *kgo.Record) error {
	if len(e.iso.poison) > 0 {
		if poison, err := e.setPoisonAside(t, rec); poison {
			return err
		}
	}
	err := t.rt.Process(rec)
	if err == nil {
		return nil
	}
	return e.policy(t, rec, err)
}

// policy applies the error policy to a record that failed; it returns the
// error back when it is not about the record (fatal).
func (e *Engine) policy(t *task, rec *kgo.Record, err error) error {
	kind := ""
	var se *topology.SourceError
	var oe *topology.OperatorError
	switch {
	case errors.As(err, &se):
		kind = "decode"
	case errors.As(err, &oe):
		kind = "operator"
	default:
		return err
	}
	e.m.errors.WithLabelValues(rec.Topic, kind, string(e.cfg.OnError)).Inc()
	switch e.cfg.OnError {
	case OnErrorFail:
		return fmt.Errorf("engine: task %s: record %s/%d@%d: %w (--on-error=fail stops here; use dlq to set bad records aside)", t.id, rec.Topic, rec.Partition, rec.Offset, err)
	case OnErrorSkip:
		e.log.Warn("skipping bad record", "task", t.id, "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", serde.TruncateText(err.Error(), topology.DeadLetterMaxError))
		return nil
	default:
		return e.produce(topology.DeadLetter(e.cfg.AppID, rec, err))
	}
}

// Header names on dead-letter records (see topology.DeadLetter).
const (
	HeaderError           = topology.HeaderError
	HeaderSourceTopic     = topology.HeaderSourceTopic
	HeaderSourcePartition = topology.HeaderSourcePartition
	HeaderSourceOffset    = topology.HeaderSourceOffset
	HeaderTruncated       = topology.HeaderTruncated
)

// produce hands a record to the producer. It blocks while the producer's
// buffer is full, which stops the loop and so the fetching: backpressure.
func (e *Engine) produce(rec *kgo.Record) error {
	e.cl.Produce(context.Background(), rec, e.onProduced)
	return nil
}

// onProduced runs on franz-go's goroutines once a record is acknowledged or
// has failed for good; the first failure stops the engine at the next batch
// boundary (its offsets are never committed).
func (e *Engine) onProduced(r *kgo.Record, err error) {
	if err != nil {
		err = fmt.Errorf("engine: produce to %s[%d]: %w", r.Topic, r.Partition, err)
		e.produceErr.CompareAndSwap(nil, &err)
	}
}

// produceControl hands a watermark control record to the producer; it is
// counted apart from data (see outCounter).
func (e *Engine) produceControl(rec *kgo.Record) {
	o := e.out[rec.Topic]
	if o == nil || o.control == nil {
		e.produce(rec) // cannot happen: controls go to repartition sinks
		return
	}
	o.controlProduced()
	e.cl.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
		o.controlDone(err)
		e.onProduced(r, err)
	})
}

// isControl reports whether rec is a watermark control record (see
// windows.HeaderKey).
func isControl(rec *kgo.Record) bool {
	for _, h := range rec.Headers {
		if h.Key == windows.HeaderKey {
			return true
		}
	}
	return false
}

// producedHook counts acknowledged records (weir_records_out_total) per
// batch, on franz-go's goroutines: counting them per record in onProduced
// cost 3% of a pass-through query's CPU.
type producedHook map[string]*outCounter

func (h producedHook) OnProduceBatchWritten(_ kgo.BrokerMetadata, topic string, _ int32, m kgo.ProduceBatchMetrics) {
	if o, ok := h[topic]; ok {
		o.written(m.NumRecords)
	}
}

func (e *Engine) producerFailed() error {
	if p := e.produceErr.Load(); p != nil {
		return *p
	}
	return nil
}

// checkpoint is the commit point, the one place where processed input
// becomes committed: wait until every produced record is acknowledged,
// then commit the next offsets of every task. The caller holds the group
// turn (see Engine.tasks).
func (e *Engine) checkpoint(ctx context.Context) error {
	start := time.Now()
	err := e.commit(ctx)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	e.m.checkpoints.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	return err
}

func (e *Engine) commit(ctx context.Context) error {
	e.force = false
	if e.sess != nil && !e.inTxn {
		return nil // nothing ran since the last transaction ended
	}
	if err := e.sweepExpired(); err != nil {
		return err
	}
	if err := e.produceChangelogs(); err != nil {
		return err
	}
	// Watermark control records go to every partition of every
	// repartition topic a task feeds, when its watermark changed.
	for _, t := range e.tasks {
		c := t.rt.Controls(int(e.lay.tasks[t.id.Subtopology]))
		if c == nil {
			continue
		}
		for _, topic := range t.rt.Repartitions() {
			for p := range e.lay.partitions[topic] {
				rec := *c
				rec.Topic, rec.Partition = topic, p
				e.produceControl(&rec)
			}
		}
	}
	if e.sess != nil {
		committed, err := e.endTxn(ctx)
		if err != nil || !committed {
			return err
		}
		afterCommit()
		e.cpID++
		return e.applyState(e.cpID)
	}
	if err := e.cl.Flush(ctx); err != nil {
		return fmt.Errorf("engine: checkpoint: flush: %w", err)
	}
	if err := e.producerFailed(); err != nil {
		return err
	}
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	var dirty []*task
	for _, t := range e.tasks {
		if !t.dirty {
			continue
		}
		dirty = append(dirty, t)
		for topic, off := range t.pos {
			if offsets[topic] == nil {
				offsets[topic] = make(map[int32]kgo.EpochOffset)
			}
			offsets[topic][t.id.Partition] = off
		}
	}
	if len(offsets) == 0 {
		e.cpID++
		return e.applyState(e.cpID) // state may change without input (windows closing on idleness)
	}
	var cerr error
	e.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if perr := kerrOf(p.ErrorCode); perr != nil && cerr == nil {
					cerr = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, perr)
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("engine: checkpoint: commit offsets: %w", cerr)
	}
	for _, t := range dirty {
		t.dirty = false
	}
	// Only now, with outputs, changelogs and offsets committed, does the
	// state reach Badger: it always equals some committed checkpoint.
	e.cpID++
	return e.applyState(e.cpID)
}

// finalCheckpoint commits what was processed before a graceful stop.
func (e *Engine) finalCheckpoint() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.checkpoint(ctx); err != nil {
		return fmt.Errorf("engine: final checkpoint: %w", err)
	}
	return nil
}

// shutdown leaves the group and closes the client. The revoke callback it
// triggers finds nothing left to commit.
func (e *Engine) shutdown() {
	e.closeClient()
	e.log.Info("stopped")
}

// newClient creates the group client: a transactional session for
// exactly-once, a plain client otherwise.
func (e *Engine) newClient() error {
	opts := []kgo.Opt{
		kgo.ClientID(e.clientID),
		kgo.ConsumerGroup(e.cfg.AppID),
		kgo.ConsumeTopics(e.plan.SourceTopics()...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), // transaction markers: for the lag only (processFetches)
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(e.cfg.SessionTimeout),
		kgo.OnPartitionsAssigned(e.onAssigned),
		kgo.OnPartitionsRevoked(e.onRevoked),
		kgo.OnPartitionsLost(e.onLost),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(e.cfg.MaxBufferedRecords),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.WithHooks(producedHook(e.out)),
	}
	if e.cfg.Guarantee != ExactlyOnce {
		cl, err := kgo.NewClient(append(opts, e.clientOpts()...)...)
		if err != nil {
			return fmt.Errorf("engine: client: %w", err)
		}
		e.cl = cl
		e.member.Store(cl)
		return nil
	}
	id, err := e.transactionalID()
	if err != nil {
		return err
	}
	opts = append(opts, kgo.TransactionalID(id), kgo.TransactionTimeout(e.cfg.transactionTimeout()),
		kgo.OnPartitionsCallbackBlocked(e.onBlocked))
	sess, err := kgo.NewGroupTransactSession(append(opts, e.clientOpts()...)...)
	if err != nil {
		return fmt.Errorf("engine: transactional client: %w", err)
	}
	e.sess, e.cl = sess, sess.Client()
	e.member.Store(e.cl)
	return nil
}

// closeClient leaves the group and closes the client, then drops whatever
// tasks the callbacks did not: their uncommitted work is gone with the
// client (aborted, or never committed).
func (e *Engine) closeClient() {
	e.ready.Store(false)
	e.cl.AllowRebalance() // the loop may have stopped mid-turn; leaving needs a rebalance
	e.cl.Close()
	for _, t := range e.tasks {
		if t.st != nil {
			t.st.Discard()
			e.released[t.id.String()] = time.Now()
		}
		e.m.watermark.DeleteLabelValues(t.id.String())
	}
	clear(e.tasks)
	clear(e.byTP)
	e.inTxn, e.staleRevoke = false, false
	e.iso.txnRecs, e.iso.last, e.iso.handled = 0, nil, nil
	e.produceErr.Store(nil)
	e.publish()
}

// onAssigned creates the tasks of newly assigned partitions. It runs on
// franz-go's group goroutine while the loop is parked (BlockRebalanceOnPoll).
func (e *Engine) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	// Standby copies of the new tasks stop first, in one round trip.
	var fresh []topology.TaskID
	for topic, parts := range assigned {
		for _, p := range parts {
			id := topology.TaskID{Subtopology: e.plan.SubtopologyFor(topic).ID, Partition: p}
			if _, ok := e.tasks[id]; !ok {
				fresh = append(fresh, id)
			}
		}
	}
	e.sb.Release(ctx, fresh)
	for topic, parts := range assigned {
		st := e.plan.SubtopologyFor(topic)
		for _, p := range parts {
			id := topology.TaskID{Subtopology: st.ID, Partition: p}
			t, ok := e.tasks[id]
			if !ok {
				var err error
				if t, err = e.newTask(ctx, st, id); err != nil {
					// A task that cannot start (its state cannot be
					// restored, a factory fails) stops the engine.
					err = fmt.Errorf("engine: task %s: %w", id, err)
					e.fatal.CompareAndSwap(nil, &err)
					continue
				}
				e.tasks[id] = t
			}
			e.byTP[tp{topic, p}] = t
		}
	}
	e.publish()
	e.ready.Store(true)
	e.log.Info("partitions assigned", "partitions", assigned, "tasks", len(e.tasks))
}

// onRevoked commits everything processed, then closes the tasks that lost
// their partitions, before franz-go hands the partitions to another member.
func (e *Engine) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if len(revoked) == 0 {
		return
	}
	if e.sess != nil {
		// The transaction cannot end here. An open one will abort at the
		// loop's next checkpoint (the session saw the revoke), which
		// rebuilds the remaining tasks; without one, the session must
		// still be told before the next Begin (see begin).
		if !e.inTxn {
			e.staleRevoke = true
		}
		e.dropPartitions(revoked)
		e.log.Info("partitions revoked", "partitions", revoked, "tasks", len(e.tasks))
		return
	}
	if err := e.checkpoint(ctx); err != nil {
		// The new owner resumes from the last commit: at-least-once
		// repeats the records since then.
		e.log.Warn("checkpoint before revoke failed", "err", err)
	}
	e.dropPartitions(revoked)
	e.log.Info("partitions revoked", "partitions", revoked, "tasks", len(e.tasks))
}

// onLost drops the tasks of partitions that are gone already (session
// expired, fenced): committing is pointless, the new owner has them.
func (e *Engine) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	if e.sess != nil && !e.inTxn {
		e.staleRevoke = true // the session will abort the next transaction otherwise
	}
	e.dropPartitions(lost)
	e.log.Warn("partitions lost", "partitions", lost, "tasks", len(e.tasks))
}

func (e *Engine) dropPartitions(parts map[string][]int32) {
	for topic, ps := range parts {
		for _, p := range ps {
			key := tp{topic, p}
			t := e.byTP[key]
			delete(e.byTP, key)
			e.m.dropLag(topic, p)
			if t == nil {
				continue
			}
			delete(t.pos, topic)
			if !e.ownsAny(t) {
				delete(e.tasks, t.id)
				if t.st != nil {
					t.st.Discard() // nothing dirty after a checkpoint; after a lost partition, nothing to keep
					e.released[t.id.String()] = time.Now()
				}
				e.m.watermark.DeleteLabelValues(t.id.String())
			}
		}
	}
	e.publish()
}

func (e *Engine) ownsAny(t *task) bool {
	for _, topic := range t.rt.Topics() {
		if e.byTP[tp{topic, t.id.Partition}] == t {
			return true
		}
	}
	return false
}

func (e *Engine) newTask(ctx context.Context, st *topology.Subtopology, id topology.TaskID) (*task, error) {
	t := &task{id: id, sub: st, pos: make(map[string]kgo.EpochOffset), shownWM: windows.Unknown}
	if e.db != nil && len(st.Stores) > 0 {
		t.st = e.db.Task(id.String())
		t.lastChangelog = make(map[string]*kgo.Record)
		delete(e.released, id.String())
		if err := e.restore(ctx, t, st); err != nil {
			return nil, err
		}
		cp, _, err := t.st.Checkpoint()
		if err != nil {
			return nil, err
		}
		t.watermarks = cp.Watermarks
	}
	if err := e.buildRuntime(t); err != nil {
		return nil, err
	}
	return t, nil
}

// buildRuntime builds the task's operators over its committed state.
func (e *Engine) buildRuntime(t *task) error {
	rt, err := t.sub.NewTask(topology.TaskEnv{
		AppID:   e.cfg.AppID,
		Task:    t.id,
		Produce: e.produce,
		Partitions: func(topic string) (int32, error) {
			n, ok := e.lay.partitions[topic]
			if !ok {
				return 0, fmt.Errorf("unknown topic %q", topic)
			}
			return n, nil
		},
		Store: func(name string) (state.Store, error) {
			if t.st == nil {
				return nil, fmt.Errorf("no state for store %q", name)
			}
			return t.st.Store(name), nil
		},
		Logger:     e.log.With("task", t.id.String()),
		Watermarks: []windows.TrackerOpt{windows.IdleTimeout(e.cfg.IdleTimeout), windows.AdvanceWhenIdle(e.cfg.AdvanceWhenIdle)},
		OnLate:     func(op string) { e.m.late.WithLabelValues(op).Inc() },
	})
	if err != nil {
		return err
	}
	for _, w := range t.watermarks {
		if w.Upstream == "" {
			rt.SeedWatermark(w.Topic, w.Partition, w.Millis)
		} else {
			rt.SeedUpstreamWatermark(w.Topic, w.Partition, w.Upstream, w.Millis)
		}
	}
	t.rt = rt
	return nil
}

func kerrOf(code int16) error { return kerr.ErrorForCode(code) }
