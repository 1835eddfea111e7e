package engine

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are one engine's Prometheus collectors, in a registry of its own
// so that several engines can live in one process (tests).
type metrics struct {
	reg            *prometheus.Registry
	recordsIn      *prometheus.CounterVec
	recordsOut     *prometheus.CounterVec
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
			Name: "weir_records_in_total", Help: "Records consumed and handed to tasks, by topic.",
		}, []string{"topic"}),
		recordsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_records_out_total", Help: "Records produced and acknowledged, by topic.",
		}, []string{"topic"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_processing_errors_total", Help: "Records that failed to decode or whose operator failed, by source topic, kind (decode, operator) and the policy applied.",
		}, []string{"topic", "kind", "policy"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_consumer_lag", Help: "Records between the partition's high watermark and the next record to process.",
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
	m.reg.MustRegister(m.recordsIn, m.recordsOut, m.errors, m.lag, m.checkpoints, m.tasks, m.late, m.watermark, m.restored, m.restoreSkipped, m.standby, m.aborts, m.perCP,
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
