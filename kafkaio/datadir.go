package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// What a data directory survives.
//
// kfake writes every batch to its segment files as it is produced, and
// saves the rest of its state (snapshots, transactions in progress) when it
// is closed. After a kill (SIGKILL, a crash, a lost machine) it replays the
// segments and aborts the transactions that were open, but only in memory:
// it writes no abort marker. A read_committed reader told that a
// producer's transaction aborted skips that producer's batches until the
// producer's next abort marker, so everything the same producer (the same
// transactional id restarted: the same producer id) commits afterwards was
// skipped too.
//
// The DevBroker keeps a file (runningFile) in the data directory while it
// runs and removes it after a clean Close. When it starts and finds the
// file, the last run did not end cleanly: before it listens for clients it
// opens the directory with kfake on a private port, reads every partition
// (read_uncommitted, control records included), and for every producer
// whose transactional records are not followed by a marker, writes an abort
// marker through the Kafka protocol (WriteTxnMarkers); then it closes
// that broker cleanly. Offsets, groups and committed transactions survive
// a kill. Not repaired: a transaction whose commit was being written when
// the broker died (kfake writes its markers one partition at a time) is
// committed on the partitions that got their marker and aborted on the
// others.

const runningName = "weir-dev-broker.running"

func runningFile(dataDir string) string { return filepath.Join(dataDir, runningName) }

// recoverDataDir writes the abort markers kfake does not write if the last
// broker on dataDir did not close cleanly, then marks the directory as in
// use.
func recoverDataDir(cfg DevBrokerConfig) error {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	running := runningFile(cfg.DataDir)
	if _, err := os.Stat(running); err == nil {
		n, err := abortOpenAtCrash(cfg)
		if err != nil {
			return fmt.Errorf("data dir %s was not closed cleanly and its open transactions could not be aborted: %w", cfg.DataDir, err)
		}
		cfg.Logger.Warn("dev broker: the data directory was not closed cleanly; wrote abort markers for the transactions open then",
			"dir", cfg.DataDir, "markers", n)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := os.WriteFile(running, []byte("a dev broker runs on this directory, or one was killed; see kafkaio/datadir.go\n"), 0o644); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return nil
}

// abortOpenAtCrash opens cfg.DataDir with kfake on a private port, writes an
// abort marker on every partition where a producer's transactional records
// have no marker after them, closes the cluster cleanly and returns the
// number of markers written.
func abortOpenAtCrash(cfg DevBrokerConfig) (int, error) {
	var addr string
	c, err := kfake.NewCluster(kfakeOpts(cfg, func(network string) (net.Listener, error) {
		ln, err := net.Listen(network, "127.0.0.1:0")
		if err == nil {
			addr = ln.Addr().String()
		}
		return ln, err
	})...)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return 0, fmt.Errorf("list topics: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics.Names()...)
	if err != nil {
		return 0, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics.Names()...)
	if err != nil {
		return 0, fmt.Errorf("list end offsets: %w", err)
	}
	consume := make(map[string]map[int32]kgo.Offset)
	left := 0
	ends.Each(func(o kadm.ListedOffset) {
		s, ok := starts.Lookup(o.Topic, o.Partition)
		if o.Err != nil || !ok || s.Err != nil || s.Offset >= o.Offset {
			return
		}
		if consume[o.Topic] == nil {
			consume[o.Topic] = make(map[int32]kgo.Offset)
		}
		consume[o.Topic][o.Partition] = kgo.NewOffset().At(s.Offset)
		left++
	})
	if err := errors.Join(starts.Error(), ends.Error()); err != nil {
		return 0, fmt.Errorf("list offsets: %w", err)
	}
	if left == 0 {
		return 0, nil
	}

	// open[partition][producer id] = epoch of its last transactional
	// record with no marker after it.
	open := make(map[tp]map[int64]int16)
	read := make(map[tp]bool) // partitions read to their end
	rd, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(consume),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	for left > 0 {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("read the logs: %w", err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("read %s/%d: %w", t, p, err) })
		if ferr != nil {
			return 0, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := tp{r.Topic, r.Partition}
			switch {
			case r.Attrs.IsControl():
				delete(open[k], r.ProducerID)
			case r.Attrs.IsTransactional():
				if open[k] == nil {
					open[k] = make(map[int64]int16)
				}
				open[k][r.ProducerID] = r.ProducerEpoch
			}
			if end, _ := ends.Lookup(r.Topic, r.Partition); r.Offset+1 >= end.Offset && !read[k] {
				read[k] = true
				left--
			}
		})
	}

	byProducer := make(map[producerEpoch]map[string][]int32)
	n := 0
	for k, ps := range open {
		for pid, epoch := range ps {
			key := producerEpoch{pid, epoch}
			if byProducer[key] == nil {
				byProducer[key] = make(map[string][]int32)
			}
			byProducer[key][k.topic] = append(byProducer[key][k.topic], k.partition)
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	if err := writeAbortMarkers(ctx, cl, byProducer); err != nil {
		return 0, err
	}
	return n, nil
}

// producerEpoch names a producer as markers do.
type producerEpoch struct {
	pid   int64
	epoch int16
}

// writeAbortMarkers writes an abort marker for each producer on each of its
// topic partitions (WriteTxnMarkers).
func writeAbortMarkers(ctx context.Context, cl *kgo.Client, byProducer map[producerEpoch]map[string][]int32) error {
	if len(byProducer) == 0 {
		return nil
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	for key, topics := range byProducer {
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.ProducerEpoch, m.Committed = key.pid, key.epoch, false
		for topic, parts := range topics {
			parts = slices.Clone(parts)
			slices.Sort(parts)
			mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			mt.Topic, mt.Partitions = topic, parts
			m.Topics = append(m.Topics, mt)
		}
		req.Markers = append(req.Markers, m)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("write abort markers: %w", err)
	}
	for _, m := range resp.Markers {
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return fmt.Errorf("write abort marker of producer %d on %s/%d: %w", m.ProducerID, t.Topic, p.Partition, err)
				}
			}
		}
	}
	return nil
}

type tp struct {
	topic     string
	partition int32
}
