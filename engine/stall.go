package engine

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// stallWatch notices input partitions whose last stable offset (LSO) stays
// behind their high watermark: a transaction on the partition is neither
// committed nor aborted, and a read_committed reader (the engine) cannot
// read past its first record. Downstream of a repartition topic this is a
// pipeline that consumed everything and emits nothing, with no error.
// The engine cannot end someone else's transaction; it makes the stall
// visible: the gauge weir_input_lso_stuck_seconds{topic,partition} and one
// warning naming the partition, then a line when it moves again.
//
// It belongs to the processing loop (watchStalls is called between
// PollRecords and AllowRebalance, the group turn).
type stallWatch struct {
	after time.Duration // reported after this long; 0 until first use
	gauge *prometheus.GaugeVec
	parts map[tp]*lsoSeen
}

type lsoSeen struct {
	lso, hwm int64
	since    time.Time // when the LSO took its value
	stuck    bool      // reported
}

// stallAfter is how long an input partition's LSO may stay behind its high
// watermark before the engine reports it: twice the transaction timeout
// (a broker aborts the transaction of a producer that died by then), and
// at least 30s.
func (c *Config) stallAfter() time.Duration {
	return max(2*c.transactionTimeout(), 30*time.Second)
}

// watchStalls records the offsets of the polled partitions and reports the
// owned partitions whose LSO has been stuck behind the high watermark for
// longer than stallAfter. Fetch sessions leave out partitions that did
// not change, so a stuck partition is judged on its last observation.
func (e *Engine) watchStalls(fetches kgo.Fetches, now time.Time) {
	w := &e.stalls
	if w.parts == nil {
		if w.after == 0 {
			w.after = e.cfg.stallAfter()
		}
		w.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_input_lso_stuck_seconds",
			Help: "Seconds an input partition's last stable offset has stayed behind its high watermark (an open transaction blocks read_committed reading), present once longer than max(2 x transaction timeout, 30s).",
		}, []string{"topic", "partition"})
		if err := e.m.reg.Register(w.gauge); err != nil {
			e.log.Warn("stall metric not registered", "err", err)
		}
		w.parts = make(map[tp]*lsoSeen)
	}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Err != nil || p.HighWatermark < 0 || p.LastStableOffset < 0 {
			return
		}
		k := tp{p.Topic, p.Partition}
		s := w.parts[k]
		if s == nil || s.lso != p.LastStableOffset {
			if s != nil && s.stuck {
				w.resolved(e, k, s, p.LastStableOffset, now)
			}
			s = &lsoSeen{lso: p.LastStableOffset, since: now}
			w.parts[k] = s
		}
		s.hwm = p.HighWatermark
	})
	for k, s := range w.parts {
		if e.byTP[k] == nil { // no longer ours
			if s.stuck {
				w.gauge.DeleteLabelValues(k.topic, strconv.Itoa(int(k.partition)))
			}
			delete(w.parts, k)
			continue
		}
		stuckFor := now.Sub(s.since)
		if s.hwm <= s.lso || stuckFor < w.after {
			continue
		}
		w.gauge.WithLabelValues(k.topic, strconv.Itoa(int(k.partition))).Set(stuckFor.Seconds())
		if !s.stuck {
			s.stuck = true
			e.log.Warn("input stalled: the partition's last stable offset has not moved while its high watermark is ahead; a transaction on it is neither committed nor aborted, and read_committed reading cannot pass it",
				"topic", k.topic, "partition", k.partition, "last_stable_offset", s.lso, "high_watermark", s.hwm, "for", stuckFor.Round(time.Second))
		}
	}
}

func (w *stallWatch) resolved(e *Engine, k tp, s *lsoSeen, lso int64, now time.Time) {
	w.gauge.DeleteLabelValues(k.topic, strconv.Itoa(int(k.partition)))
	e.log.Info("input stall over: the partition's last stable offset moved",
		"topic", k.topic, "partition", k.partition, "last_stable_offset", lso, "stalled_for", now.Sub(s.since).Round(time.Second))
}
