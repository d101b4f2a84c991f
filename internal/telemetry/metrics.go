// Package telemetry holds alertrelay's logging set-up, Prometheus metrics and
// the admin HTTP endpoints (/healthz, /readyz, /metrics).
package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics owns the Prometheus registry of one daemon. There is no global
// registry: tests build their own.
type Metrics struct {
	Registry *prometheus.Registry

	srcLines, srcBytes, srcEvents, srcInvalid, srcOversize, srcRepaired *prometheus.CounterVec
	connAccepted, connRefused, connDenied                               *prometheus.CounterVec
	connActive                                                          *prometheus.GaugeVec

	sinkSent, sinkFailed, sinkRetried, sinkDead, sinkDropped *prometheus.CounterVec
	sinkQueueEvents, sinkQueueBytes, sinkQueueAge            *prometheus.GaugeVec
	sinkLatency                                              *prometheus.HistogramVec
}

// NewMetrics registers every alertrelay metric, plus the Go and process
// collectors, on a new registry.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "alertrelay", Name: name, Help: help}, labels)
		r.MustRegister(c)
		return c
	}
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		c := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "alertrelay", Name: name, Help: help}, labels)
		r.MustRegister(c)
		return c
	}
	m := &Metrics{
		Registry:     r,
		srcLines:     f("source_lines_total", "Lines read by a source.", "source"),
		srcBytes:     f("source_bytes_total", "Bytes read by a source.", "source"),
		srcEvents:    f("source_events_total", "Events a source handed to the queues.", "source"),
		srcInvalid:   f("source_invalid_total", "Lines that could not be parsed (kept in the dead-letter file).", "source"),
		srcOversize:  f("source_oversize_total", "Lines dropped for exceeding max_line_bytes.", "source"),
		srcRepaired:  f("source_utf8_repaired_total", "Lines whose invalid UTF-8 was replaced.", "source"),
		connAccepted: f("source_connections_accepted_total", "Connections accepted.", "source"),
		connRefused:  f("source_connections_refused_total", "Connections refused at max_connections.", "source"),
		connDenied:   f("source_connections_denied_total", "Connections refused by allow_cidrs.", "source"),
		connActive:   g("source_connections_active", "Open connections.", "source"),

		sinkSent:        f("sink_sent_events_total", "Events a sink delivered.", "sink"),
		sinkFailed:      f("sink_failed_batches_total", "Batch attempts that failed.", "sink"),
		sinkRetried:     f("sink_retried_events_total", "Events sent again after a failure.", "sink"),
		sinkDead:        f("sink_dead_lettered_events_total", "Events written to the dead-letter file.", "sink"),
		sinkDropped:     f("sink_dropped_events_total", "Events dropped because the queue was full (when_full: drop_newest).", "sink"),
		sinkQueueAge:    g("sink_queue_oldest_age_seconds", "Age of the oldest event waiting in the queue (disk queues).", "sink"),
		sinkQueueEvents: g("sink_queue_events", "Events waiting in the sink's queue.", "sink"),
		sinkQueueBytes:  g("sink_queue_bytes", "Bytes waiting in the sink's queue.", "sink"),
		sinkLatency: func() *prometheus.HistogramVec {
			h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Namespace: "alertrelay", Name: "sink_batch_latency_seconds",
				Help: "Time to deliver one batch, retries excluded.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
			}, []string{"sink"})
			r.MustRegister(h)
			return h
		}(),
	}
	return m
}

// SourceMetrics are one source's counters, resolved once so the hot path
// does no label lookups.
type SourceMetrics struct {
	Lines, Bytes, Events, Invalid, Oversize, Repaired prometheus.Counter
	ConnAccepted, ConnRefused, ConnDenied             prometheus.Counter
	ConnActive                                        prometheus.Gauge
}

// Source returns the counters of source name.
func (m *Metrics) Source(name string) *SourceMetrics {
	return &SourceMetrics{
		Lines: m.srcLines.WithLabelValues(name), Bytes: m.srcBytes.WithLabelValues(name),
		Events: m.srcEvents.WithLabelValues(name), Invalid: m.srcInvalid.WithLabelValues(name),
		Oversize: m.srcOversize.WithLabelValues(name), Repaired: m.srcRepaired.WithLabelValues(name),
		ConnAccepted: m.connAccepted.WithLabelValues(name), ConnRefused: m.connRefused.WithLabelValues(name),
		ConnDenied: m.connDenied.WithLabelValues(name), ConnActive: m.connActive.WithLabelValues(name),
	}
}

// SinkMetrics are one sink's counters.
type SinkMetrics struct {
	Sent, Failed, Retried, DeadLettered, Dropped prometheus.Counter
	QueueEvents, QueueBytes, QueueAge            prometheus.Gauge
	Latency                                      prometheus.Observer
}

// Sink returns the counters of sink name.
func (m *Metrics) Sink(name string) *SinkMetrics {
	return &SinkMetrics{
		Sent: m.sinkSent.WithLabelValues(name), Failed: m.sinkFailed.WithLabelValues(name),
		Retried: m.sinkRetried.WithLabelValues(name), DeadLettered: m.sinkDead.WithLabelValues(name),
		Dropped:     m.sinkDropped.WithLabelValues(name),
		QueueEvents: m.sinkQueueEvents.WithLabelValues(name), QueueBytes: m.sinkQueueBytes.WithLabelValues(name),
		QueueAge: m.sinkQueueAge.WithLabelValues(name),
		Latency:  m.sinkLatency.WithLabelValues(name),
	}
}
