package processor

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taillight/taillight/internal/promreg"
)

// DLQ reasons: the fixed values of the taillight-dlq-reason header and of
// the reason label of taillight_processor_dlq_total.
const (
	ReasonBadJSON   = "bad_json"   // not JSON, or not a JSON object
	ReasonWrongType = "wrong_type" // valid JSON with a field of the wrong type
	ReasonInvalid   = "invalid"    // decodes but breaks the contract (schemas.ErrInvalid)
	ReasonOversize  = "oversize"   // larger than schemas.MaxItemBytes
	// ReasonOutOfRange: decodes but a value is outside Config.Limits
	// (schemas.ErrOutOfRange).
	ReasonOutOfRange = "out_of_range"
)

var reasons = []string{ReasonBadJSON, ReasonWrongType, ReasonInvalid, ReasonOversize, ReasonOutOfRange}

type metrics struct {
	records      prometheus.Counter
	rows         prometheus.Counter
	blocks       prometheus.Counter
	flush        prometheus.Histogram
	commitBlocks prometheus.Histogram
	dlq          *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	freshness    prometheus.Gauge
	retries      prometheus.Counter
	replays      prometheus.Counter
	paused       prometheus.Gauge
	partitions   prometheus.Gauge
	sealedBlocks prometheus.Counter
	sealErrors   prometheus.Counter
	halted       prometheus.Gauge
	held         prometheus.Gauge
	logLost      prometheus.Counter
	logAnomalies *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promreg.With(reg)
	m := &metrics{
		records: f.NewCounter(prometheus.CounterOpts{
			Name: "taillight_processor_records_total",
			Help: "Kafka records in blocks written to the sink (poison records included).",
		}),
		rows: f.NewCounter(prometheus.CounterOpts{
			Name: "taillight_processor_rows_total",
			Help: "Raw rows written to the sink.",
		}),
		blocks: f.NewCounter(prometheus.CounterOpts{
			Name: "taillight_processor_blocks_total",
			Help: "Blocks written to the sink.",
		}),
		flush: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "taillight_processor_flush_seconds",
			Help:    "Time to write the blocks of one group commit to the sink (successful attempt).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		sealedBlocks: f.NewCounter(prometheus.CounterOpts{
			Name: "taillight_processor_sealed_blocks_total",
			Help: "Blocks of the owned partitions sealed into per-minute rows.",
		}),
		sealErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "taillight_processor_seal_errors_total",
			Help: "Seal runs that failed (retried on the next tick).",
		}),
		commitBlocks: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "taillight_processor_commit_blocks",
			Help:    "Blocks written together by one group commit (one rollup INSERT per ClickHouse shard).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 8),
		}),
		dlq: f.NewCounterVec(prometheus.CounterOpts{
			Name: "taillight_processor_dlq_total",
			Help: "Poison records acknowledged by the dead-letter topic, by reason.",
		}, []string{"reason"}),
		lag: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "taillight_processor_lag",
			Help: "Records between a partition's high watermark and the end of its last written block.",
		}, []string{"partition"}),
		freshness: f.NewGauge(prometheus.GaugeOpts{
			Name: "taillight_processor_event_freshness_seconds",
			Help: "Age of the newest event (event time) in the last written block when it was written.",
		}),
		retries: f.NewCounter(prometheus.CounterOpts{
			Name: "taillight_processor_sink_retries_total",
			Help: "Failed attempts to write a block (sink or DLQ) that were retried.",
		}),
		replays: f.NewCounter(prometheus.CounterOpts{
			Name: "taillight_processor_block_replays_total",
			Help: "Blocks whose raw-row stream failed and whose records were read again from Kafka and sent.",
		}),
		paused: f.NewGauge(prometheus.GaugeOpts{
			Name: "taillight_processor_paused_partitions",
			Help: "Partitions whose fetching is paused because the sink fails.",
		}),
		partitions: f.NewGauge(prometheus.GaugeOpts{
			Name: "taillight_processor_partitions",
			Help: "Partitions assigned to this processor.",
		}),
		held: f.NewGauge(prometheus.GaugeOpts{
			Name: "taillight_processor_held_bytes",
			Help: "Record bytes polled and not yet sent to the sink, bounded by -memory.budget.",
		}),
		halted: f.NewGauge(prometheus.GaugeOpts{
			Name: "taillight_processor_halted_partitions",
			Help: "Assigned partitions not consumed because their Kafka log changed under the stored watermark (see taillight relog).",
		}),
		logLost: f.NewCounter(prometheus.CounterOpts{
			Name: "taillight_processor_log_lost_records_total",
			Help: "Records removed from Kafka (retention, truncation) before they were read: the watermark lay below the log start.",
		}),
		logAnomalies: f.NewCounterVec(prometheus.CounterOpts{
			Name: "taillight_processor_log_anomalies_total",
			Help: "Kafka log changes found, by kind: below_log_start, past_log_end, topic_id_changed.",
		}, []string{"kind"}),
	}
	for _, k := range []string{anomalyBelowStart, anomalyPastEnd, anomalyTopicID} {
		m.logAnomalies.WithLabelValues(k)
	}
	for _, r := range reasons {
		m.dlq.WithLabelValues(r) // export zeros so alerts see the series
	}
	return m
}
