package engine

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/topology"
)

// Isolation (exactly-once). A record whose processing produces something
// the broker rejects every time (an output or a dead letter larger than
// the topic's max.message.bytes) aborts its checkpoint's transaction, and
// the replay aborts again: without isolation the engine replays the same
// transaction forever. After isolateAfter aborts in a row caused by a
// produce failure, with no commit between them, the engine isolates:
//
//   - it bounds the input records of each transaction, starting at half
//     of the last aborted one's; a transaction that aborts again halves
//     the bound, one that commits doubles it (the records in it are
//     innocent), so a record that fails is found in about log2(n)
//     transactions;
//   - a transaction of one input record that aborts for a produce
//     failure names that record: it is poison. When it comes again
//     (the abort rewound the consumer), it is not processed: its dead
//     letter, with the produce error as its reason, is the only thing
//     its transaction produces. If the broker rejects the dead letter
//     too, the next one carries neither key, value nor headers of the
//     record (only why and where from); if even that fails, the record
//     is skipped with an error logged and counted. With --on-error=skip
//     it is skipped at once, with fail the engine stops naming it;
//   - isolation ends when the records of the transaction that started it
//     have all been committed.
//
// Everything here belongs to the group-turn owner (the loop).
type isolation struct {
	// streak counts the aborts caused by a produce failure since the last
	// commit.
	streak int
	// active says the engine isolates; limit bounds the input records of
	// a transaction meanwhile, left is how many records are still to be
	// committed before it ends.
	active      bool
	limit, left int
	// txnRecs and last are the input records of the open transaction and
	// the last of them; handled the poison records it dead-letters or
	// skips.
	txnRecs int
	last    *kgo.Record
	handled []recordAt
	// poison holds the records found to make their checkpoint fail, until
	// a transaction that sets them aside commits.
	poison map[recordAt]*poisonRecord
}

// isolateAfter is how many aborts in a row, each caused by a produce
// failure, start isolating.
const isolateAfter = 3

type recordAt struct {
	topic     string
	partition int32
	offset    int64
}

func at(rec *kgo.Record) recordAt { return recordAt{rec.Topic, rec.Partition, rec.Offset} }

// poisonRecord is a record found to make its checkpoint fail.
type poisonRecord struct {
	err error // the produce failure its processing caused
	// deadErr is the failure of its (full) dead letter, when the broker
	// rejected that too; bareErr that of the bare one.
	deadErr, bareErr error
	// outcome is what its current transaction does with it: "dlq",
	// "dlq_bare" or "skipped" (the isolated records metric's label).
	outcome string
}

// poisonError is the reason a poison record's dead letter gives.
type poisonError struct{ err error }

func (e *poisonError) Error() string {
	return "engine: its checkpoint fails every time it is in it (isolated): " + e.err.Error()
}

func (e *poisonError) Unwrap() error { return e.err }

// isolationDue reports whether the open transaction has as many input
// records as isolation allows: it must end now.
func (e *Engine) isolationDue() bool { return e.iso.active && e.iso.txnRecs >= e.iso.limit }

// pollLimit is the most records the next poll may return.
func (e *Engine) pollLimit() int {
	if !e.iso.active {
		return e.cfg.MaxPollRecords
	}
	return max(1, min(e.cfg.MaxPollRecords, e.iso.limit-e.iso.txnRecs))
}

// setPoisonAside handles a poison record coming again instead of
// processing it. It reports whether rec is one; the error is fatal.
func (e *Engine) setPoisonAside(t *task, rec *kgo.Record) (bool, error) {
	p := e.iso.poison[at(rec)]
	if p == nil {
		return false, nil
	}
	e.iso.handled = append(e.iso.handled, at(rec))
	reason := &poisonError{p.err}
	switch {
	case e.cfg.OnError == OnErrorFail:
		return true, fmt.Errorf("engine: task %s: record %s/%d@%d: %w (--on-error=fail stops here; use dlq to set such records aside)", t.id, rec.Topic, rec.Partition, rec.Offset, reason)
	case e.cfg.OnError == OnErrorSkip || p.bareErr != nil:
		p.outcome = "skipped"
		e.log.Error("skipping an isolated record: its checkpoint fails every time it is in it, and its dead letter cannot be written",
			"task", t.id, "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", p.err, "dead_letter_err", p.bareErr)
		return true, nil
	case p.deadErr != nil:
		p.outcome = "dlq_bare"
		err := fmt.Errorf("%w; its dead letter was rejected too, so this one has no key, value or headers of the record: %w", reason, p.deadErr)
		bare := &kgo.Record{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp}
		return true, e.produce(topology.DeadLetter(e.cfg.AppID, bare, err))
	default:
		p.outcome = "dlq"
		return true, e.produce(topology.DeadLetter(e.cfg.AppID, rec, reason))
	}
}

// isolationEnded updates isolation after the open transaction ended:
// committed, or aborted because of produceErr (nil for another cause).
func (e *Engine) isolationEnded(committed bool, produceErr error) {
	iso := &e.iso
	n, last, handled := iso.txnRecs, iso.last, iso.handled
	iso.txnRecs, iso.last, iso.handled = 0, nil, nil
	switch {
	case committed:
		iso.streak = 0
		for _, a := range handled {
			if p := iso.poison[a]; p != nil {
				e.m.isolated.WithLabelValues(p.outcome).Inc()
				delete(iso.poison, a)
			}
		}
		if iso.active && n > 0 {
			iso.left -= n
			iso.limit = max(1, min(2*iso.limit, iso.left))
			if iso.left <= 0 {
				iso.active = false
				e.log.Info("isolation ended: the records of the failing checkpoint are committed")
			}
		}
	case produceErr == nil:
		// Another cause (a rebalance): nothing learnt about the records.
	case iso.active && n == 1 && len(handled) == 1:
		// A transaction that sets a poison record aside, and holds
		// nothing else, failed: its dead letter was rejected.
		if p := iso.poison[handled[0]]; p != nil {
			if p.deadErr == nil {
				p.deadErr = produceErr
			} else {
				p.bareErr = produceErr
			}
		}
	case iso.active && n == 1:
		if iso.poison == nil {
			iso.poison = make(map[recordAt]*poisonRecord)
		}
		iso.poison[at(last)] = &poisonRecord{err: produceErr}
		iso.limit = 1 // its dead letter alone, so that a failure of it is known as such
		e.log.Error("isolated a record: its checkpoint fails every time it is in it; it goes to the dead-letter topic",
			"topic", last.Topic, "partition", last.Partition, "offset", last.Offset, "err", produceErr)
	case iso.active && n > 1:
		iso.limit = max(1, n/2)
	default:
		iso.streak++
		if iso.streak >= isolateAfter && n > 0 {
			iso.active, iso.limit, iso.left = true, max(1, n/2), n
			e.log.Warn("checkpoints keep aborting on a produce failure: isolating the record that causes it",
				"aborts", iso.streak, "records", n, "err", produceErr)
		}
	}
}
