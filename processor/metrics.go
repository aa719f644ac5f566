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

	kafkaCommitErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promreg.With(reg)
	m := &metrics{
		records:      f.Counter("taillight_processor_records_total", "Kafka records in blocks written to the sink (poison records included)."),
		rows:         f.Counter("taillight_processor_rows_total", "Raw rows written to the sink."),
		blocks:       f.Counter("taillight_processor_blocks_total", "Blocks written to the sink."),
		flush:        f.Histogram("taillight_processor_flush_seconds", "Time to write the blocks of one group commit to the sink (successful attempt).", prometheus.ExponentialBuckets(0.001, 2, 16)),
		sealedBlocks: f.Counter("taillight_processor_sealed_blocks_total", "Blocks of the owned partitions sealed into per-minute rows."),
		sealErrors:   f.Counter("taillight_processor_seal_errors_total", "Seal runs that failed (retried on the next tick)."),
		commitBlocks: f.Histogram("taillight_processor_commit_blocks", "Blocks written together by one group commit (one rollup INSERT per ClickHouse shard).", prometheus.ExponentialBuckets(1, 2, 8)),
		dlq:          f.CounterVec("taillight_processor_dlq_total", "Poison records acknowledged by the dead-letter topic, by reason.", "reason"),
		lag:          f.GaugeVec("taillight_processor_lag", "Records between a partition's high watermark and the end of its last written block.", "partition"),
		freshness:    f.Gauge("taillight_processor_event_freshness_seconds", "Age of the newest event (event time) in the last written block when it was written."),
		retries:      f.Counter("taillight_processor_sink_retries_total", "Failed attempts to write a block (sink or DLQ) that were retried."),
		replays:      f.Counter("taillight_processor_block_replays_total", "Blocks whose raw-row stream failed and whose records were read again from Kafka and sent."),
		paused:       f.Gauge("taillight_processor_paused_partitions", "Partitions whose fetching is paused because the sink fails."),
		partitions:   f.Gauge("taillight_processor_partitions", "Partitions assigned to this processor."),
		held:         f.Gauge("taillight_processor_held_bytes", "Record bytes polled and not yet sent to the sink, bounded by -memory.budget."),
		halted:       f.Gauge("taillight_processor_halted_partitions", "Assigned partitions not consumed because their Kafka log changed under the stored watermark (see taillight relog)."),
		logLost:      f.Counter("taillight_processor_log_lost_records_total", "Records removed from Kafka (retention, truncation) before they were read: the watermark lay below the log start."),
		kafkaCommitErrors: f.Counter("taillight_processor_kafka_commit_errors_total",
			"Offset commits to Kafka that failed. They only feed consumer-lag tools: the sink holds the delivery watermark."),
		logAnomalies: f.CounterVec("taillight_processor_log_anomalies_total", "Kafka log changes found, by kind: below_log_start, past_log_end, topic_id_changed.", "kind"),
	}
	for _, k := range []string{anomalyBelowStart, anomalyPastEnd, anomalyTopicID} {
		m.logAnomalies.WithLabelValues(k)
	}
	for _, r := range reasons {
		m.dlq.WithLabelValues(r) // export zeros so alerts see the series
	}
	return m
}
