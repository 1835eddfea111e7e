package changelog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one changelog record handed to ReadRange's callback.
type Record struct {
	// Key is the store key.
	Key []byte
	// Value is the unframed stored value; nil when Deleted.
	Value []byte
	// Deleted reports a tombstone.
	Deleted bool
	// Offset is the record's offset in the changelog partition.
	Offset int64
}

// RestoreStats describes one ReadRange.
type RestoreStats struct {
	// From is the offset the read started at.
	From int64
	// End is the partition's last stable offset when the read started:
	// the read covered [From, End).
	End int64
	// Records is the number of records handed to the callback (values and
	// tombstones; control records and aborted data are not counted).
	Records int64
	// Duration is the wall time of the read.
	Duration time.Duration
}

const (
	// progressEvery is how often ReadRange logs its progress.
	progressEvery = 5 * time.Second
	// idleProbeAfter is how long a poll may return nothing before
	// ReadRange asks the leader whether anything is left below End.
	idleProbeAfter = time.Second
)

// ReadRange reads one changelog partition from offset from up to its last
// stable offset as of the call, calling fn with each polled batch of
// records, in offset order, and returns when the range is done.
//
// It builds its own client from opts (seed brokers, TLS, SASL, logger...)
// and adds: direct consumption of topic/partition from from, read_committed
// isolation (aborted transactions are skipped), and KeepControlRecords (so
// a range ending in a transaction marker is seen to end). If from is below
// the log start (retention, DeleteRecords), the read starts at the log
// start. It logs its progress (records, keys/s, position, expected end) at
// info every 5 seconds, and a summary at the end, with slog.Default().
//
// The range ends at End = the last stable offset at the start. ReadRange
// stops when it has seen a record at End-1 or beyond, or when a poll
// stays empty for a second and a direct fetch from the partition leader
// shows that nothing deliverable remains in [position, End) (the tail was
// removed by compaction, or was aborted data). Records at End or beyond
// are not delivered.
//
// If from is past End (the topic was deleted and recreated, or truncated),
// ReadRange returns at once with stats.End < stats.From and no error; the
// caller decides what that means for its local state.
//
// fn owns the slice and the records' byte slices. An error from fn stops
// the read and is returned. Cancelling ctx stops the read and returns
// ctx.Err(). A value whose frame does not decode stops the read with a
// *RecordError.
func ReadRange(ctx context.Context, opts []kgo.Opt, topic string, partition int32, from int64, fn func(recs []Record) error) (RestoreStats, error) {
	start := time.Now()
	stats := RestoreStats{From: from, End: from}
	if from < 0 {
		return stats, fmt.Errorf("changelog: read %s[%d] from offset %d: offset is negative", topic, partition, from)
	}
	cl, err := kgo.NewClient(append(slices.Clone(opts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return stats, fmt.Errorf("changelog: client for %s[%d]: %w", topic, partition, err)
	}
	defer cl.Close()

	end, err := lastStableOffset(ctx, cl, topic, partition)
	if err != nil {
		return stats, err
	}
	stats.End = end
	log := slog.Default().With("topic", topic, "partition", partition)

	pos := from
	lastLog := start
	for pos < end {
		pctx, cancel := context.WithTimeout(ctx, idleProbeAfter)
		fetches := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			stats.Duration = time.Since(start)
			return stats, err
		}
		idle := true
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			stats.Duration = time.Since(start)
			return stats, fmt.Errorf("changelog: fetch %s[%d]: %w", topic, partition, fe.Err)
		}
		var recs []Record
		var decodeErr error
		fetches.EachRecord(func(r *kgo.Record) {
			if decodeErr != nil || r.Offset < pos || pos >= end {
				return
			}
			idle = false
			if r.Offset >= end {
				pos = end
				return
			}
			pos = r.Offset + 1
			if r.Attrs.IsControl() {
				return
			}
			v, del, err := DecodeValue(r.Value)
			if err != nil {
				decodeErr = &RecordError{Topic: topic, Partition: partition, Offset: r.Offset, Err: err}
				return
			}
			recs = append(recs, Record{Key: r.Key, Value: v, Deleted: del, Offset: r.Offset})
		})
		if decodeErr != nil {
			stats.Duration = time.Since(start)
			return stats, decodeErr
		}
		if len(recs) > 0 {
			stats.Records += int64(len(recs))
			if err := fn(recs); err != nil {
				stats.Duration = time.Since(start)
				return stats, err
			}
		}
		if idle && pos < end {
			done, err := nothingLeft(ctx, cl, topic, partition, pos, end)
			if err != nil {
				log.Debug("changelog: restore probe inconclusive", "position", pos, "end", end, "err", err)
			}
			if done {
				pos = end
			}
		}
		if now := time.Now(); now.Sub(lastLog) >= progressEvery {
			lastLog = now
			elapsed := now.Sub(start).Seconds()
			log.Info("changelog: restoring",
				"records", stats.Records, "keys_per_sec", int64(float64(stats.Records)/elapsed),
				"position", pos, "from", from, "end", end)
		}
	}
	stats.Duration = time.Since(start)
	if stats.Records > 0 {
		log.Info("changelog: restored", "records", stats.Records, "from", from, "end", end, "duration", stats.Duration)
	}
	return stats, nil
}

// lastStableOffset lists the partition's last stable offset (the end of
// what read_committed consumers can read).
func lastStableOffset(ctx context.Context, cl *kgo.Client, topic string, partition int32) (int64, error) {
	listed, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("changelog: list last stable offset of %s[%d]: %w", topic, partition, err)
	}
	o, ok := listed.Lookup(topic, partition)
	if !ok {
		return 0, fmt.Errorf("%w: %s[%d]", ErrNoPartition, topic, partition)
	}
	if o.Err != nil {
		if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
			return 0, fmt.Errorf("%w: %s[%d]: %w", ErrNoPartition, topic, partition, o.Err)
		}
		return 0, fmt.Errorf("changelog: list last stable offset of %s[%d]: %w", topic, partition, o.Err)
	}
	return o.Offset, nil
}

// nothingLeft fetches [pos, end) directly from the partition leader and
// reports whether it holds no record the consumer would deliver (data or
// control, read_committed). An error means "don't know".
//
// It exists for the one case the consumer cannot signal: the records just
// below end are gone (compaction removed them; Kafka may keep an empty
// batch or nothing), so the consumer never hands out a record at end-1.
// A broker answers a fetch below its last stable offset at once, with at
// least one batch if any exists at or after the fetch offset, so an empty
// answer (without throttling) means nothing is left.
func nothingLeft(ctx context.Context, cl *kgo.Client, topic string, partition int32, pos, end int64) (bool, error) {
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	mreq.Topics = append(mreq.Topics, mt)
	meta, err := cl.RequestCachedMetadata(ctx, mreq, 0)
	if err != nil {
		return false, err
	}
	leader, topicID := int32(-1), [16]byte{}
	for _, t := range meta.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		topicID = t.TopicID
		for _, p := range t.Partitions {
			if p.Partition == partition {
				leader = p.Leader
			}
		}
	}
	if leader < 0 {
		return false, fmt.Errorf("no leader for %s[%d]", topic, partition)
	}

	// Bounded: each round moves pos forward or returns.
	for range 64 {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MinBytes = 0
		req.MaxBytes = 1 << 20
		req.IsolationLevel = 1
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, topicID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = partition
		rp.FetchOffset = pos
		rp.LogStartOffset = -1
		rp.PartitionMaxBytes = 1 << 20
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)

		kresp, err := cl.Broker(int(leader)).Request(ctx, req)
		if err != nil {
			return false, err
		}
		resp := kresp.(*kmsg.FetchResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return false, err
		}
		var part *kmsg.FetchResponseTopicPartition
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if resp.Topics[i].Partitions[j].Partition == partition {
					part = &resp.Topics[i].Partitions[j]
				}
			}
		}
		if part == nil {
			return false, fmt.Errorf("fetch response lacks %s[%d]", topic, partition)
		}
		if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
			if errors.Is(err, kerr.OffsetOutOfRange) && pos < part.LogStartOffset {
				pos = part.LogStartOffset // the range starts below the log start
				if pos >= end {
					return true, nil
				}
				continue
			}
			return false, err
		}
		if len(part.RecordBatches) == 0 {
			if resp.ThrottleMillis > 0 {
				return false, fmt.Errorf("fetch throttled for %dms", resp.ThrottleMillis)
			}
			return true, nil
		}
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			KeepControlRecords: true,
			Offset:             pos,
			IsolationLevel:     kgo.ReadCommitted(),
			Topic:              topic,
			Partition:          partition,
		}, part, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			return false, fp.Err
		}
		for _, r := range fp.Records {
			if r.Offset >= pos && r.Offset < end {
				return false, nil // the consumer will deliver it
			}
		}
		if next >= end {
			return true, nil
		}
		if next <= pos {
			return false, fmt.Errorf("fetch at %d made no progress", pos)
		}
		pos = next
	}
	return false, fmt.Errorf("still below end %d after 64 fetches", end)
}
