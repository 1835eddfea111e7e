package engine

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are one engine's Prometheus collectors, in a registry of its own
// so that several engines can live in one process (tests).
type metrics struct {
	reg            *prometheus.Registry
	recordsIn      *prometheus.CounterVec
	recordsOut     *prometheus.CounterVec
	controlsOut    *prometheus.CounterVec
	errors         *prometheus.CounterVec
	lag            *prometheus.GaugeVec
	checkpoints    *prometheus.HistogramVec
	tasks          prometheus.Gauge
	late           *prometheus.CounterVec
	watermark      *prometheus.GaugeVec
	restored       *prometheus.CounterVec
	restoreSkipped *prometheus.CounterVec
	standby        *prometheus.CounterVec
	aborts         *prometheus.CounterVec
	perCP          prometheus.Histogram
	isolated       *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		recordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_records_in_total", Help: "Data records consumed and handed to tasks, by topic (not control records: watermarks on repartition topics, transaction markers).",
		}, []string{"topic"}),
		recordsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_records_out_total", Help: "Data records produced and acknowledged, by topic (not the watermark control records on repartition topics).",
		}, []string{"topic"}),
		controlsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_control_records_out_total", Help: "Watermark control records produced to repartition topics and acknowledged, by topic.",
		}, []string{"topic"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_processing_errors_total", Help: "Records that failed to decode or whose operator failed, by source topic, kind (decode, operator) and the policy applied.",
		}, []string{"topic", "kind", "policy"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_consumer_lag", Help: "Offsets between the partition's last stable offset (the end read_committed can read) and the position after the last record fetched (data or transaction marker); 0 when caught up.",
		}, []string{"topic", "partition"}),
		checkpoints: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "weir_checkpoint_duration_seconds", Help: "Duration of checkpoints (flush outputs, commit offsets), by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"outcome"}),
		tasks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weir_tasks", Help: "Tasks owned by this process.",
		}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_late_records_total", Help: "Records later than their windows' grace, sent to the late-data output, by operator.",
		}, []string{"operator"}),
		watermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_task_watermark_ms", Help: "Event-time watermark of each task (epoch ms; absent until known).",
		}, []string{"task"}),
		restored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_restore_records_total", Help: "Changelog records replayed into local state, by store.",
		}, []string{"store"}),
		restoreSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_restore_skipped_total", Help: "Changelog records skipped by restores and standbys because the store cannot hold them (key or value too large), by store.",
		}, []string{"store"}),
		standby: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_standby_records_total", Help: "Changelog records applied to standby (warm) copies of tasks owned elsewhere, by store.",
		}, []string{"store"}),
		aborts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_transaction_aborts_total", Help: "Aborted checkpoint transactions, by cause (rebalance: the group moved on or fenced us; produce: a record failed; error: the producer failed).",
		}, []string{"cause"}),
		perCP: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "weir_checkpoint_records", Help: "Input records per committed checkpoint.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 12),
		}),
		isolated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_isolated_records_total", Help: "Input records isolated because their checkpoint failed every time they were in it (a produce the broker rejects), by outcome (dlq; dlq_bare: the dead letter was rejected too, so it has no key, value or headers of the record; skipped).",
		}, []string{"outcome"}),
	}
	m.reg.MustRegister(m.recordsIn, m.recordsOut, m.controlsOut, m.errors, m.lag, m.checkpoints, m.tasks, m.late, m.watermark, m.restored, m.restoreSkipped, m.standby, m.aborts, m.perCP,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(m.isolated)
	return m
}

func (m *metrics) setLag(topic string, partition int32, lag int64) {
	m.lag.WithLabelValues(topic, strconv.Itoa(int(partition))).Set(float64(lag))
}

func (m *metrics) dropLag(topic string, partition int32) {
	m.lag.DeleteLabelValues(topic, strconv.Itoa(int(partition)))
}

// outCounter counts the records acknowledged on one output topic. The
// producer hook that counts them sees batches, not records (counting per
// record cost 3% of a pass-through query's CPU), and on a repartition
// topic a batch may mix data records and the engine's watermark control
// records. So every control record the loop produces adds one to debt,
// and the hook counts a batch's records as data after taking what it can
// of debt from them; a control record that fails gives its share back.
// data can lag behind the truth while control records are in flight (a
// data batch may pay a control record's debt before that one's batch is
// counted) but never gets ahead of it, and equals it once every control
// record is acknowledged or failed.
type outCounter struct {
	data    prometheus.Counter // weir_records_out_total
	control prometheus.Counter // weir_control_records_out_total; nil on topics without control records
	debt    atomic.Int64       // control records produced that no batch has paid for
}

// take subtracts up to n from debt and returns how much it took.
func (o *outCounter) take(n int64) int64 {
	for {
		d := o.debt.Load()
		t := min(d, n)
		if t <= 0 || o.debt.CompareAndSwap(d, d-t) {
			return max(t, 0)
		}
	}
}

// written counts a batch of n records acknowledged on the topic. It runs
// on franz-go's goroutines.
func (o *outCounter) written(n int) {
	data := int64(n)
	if o.control != nil {
		data -= o.take(data)
	}
	if data > 0 {
		o.data.Add(float64(data))
	}
}

// controlProduced is called by the loop before it produces a control record.
func (o *outCounter) controlProduced() { o.debt.Add(1) }

// controlDone is called, on franz-go's goroutines, once a control record
// is acknowledged (err nil) or has failed for good.
func (o *outCounter) controlDone(err error) {
	switch {
	case err == nil:
		o.control.Inc()
	case o.take(1) == 0:
		// A data batch paid this record's debt: give the data back.
		o.data.Inc()
	}
}
