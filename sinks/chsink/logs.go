package chsink

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/storage"
)

// LogIdentity implements sinks.Sink: the highest generation recorded
// in kafka_logs for the partition.
func (w *Writer) LogIdentity(ctx context.Context, topic string, partition int32) (sinks.LogIdentity, bool, error) {
	conn, ctx := w.target(ctx, partition, true)
	q := fmt.Sprintf(`SELECT count(), max(generation), argMax(topic_id, generation) FROM %s.%s
WHERE kafka_topic = ? AND kafka_partition = ?`, w.cfg.Database, TableKafkaLogs)
	var (
		n   uint64
		gen uint32
		id  string
	)
	if err := conn.QueryRow(ctx, q, topic, partition).Scan(&n, &gen, &id); err != nil {
		err = classify(fmt.Sprintf("read log identity of %s/%d", topic, partition), err)
		w.m.errors.WithLabelValues(TableKafkaLogs, Reason(err)).Inc()
		return sinks.LogIdentity{}, false, err
	}
	if n == 0 {
		return sinks.LogIdentity{}, false, nil
	}
	return sinks.LogIdentity{Generation: gen, TopicID: id}, true, nil
}

// SetLogIdentity implements sinks.Sink. The row also says why it
// was recorded, for whoever reads kafka_logs later.
func (w *Writer) SetLogIdentity(ctx context.Context, topic string, partition int32, id sinks.LogIdentity) error {
	reason := "first read"
	if id.Generation > 0 {
		reason = "taillight relog"
	}
	conn, ctx := w.target(ctx, partition, false)
	table := TableKafkaLogs
	if len(w.shards) > 0 {
		table += storage.LocalSuffix
	}
	q := fmt.Sprintf("INSERT INTO %s.%s (kafka_topic, kafka_partition, generation, topic_id, reason)", w.cfg.Database, table)
	err := w.insertOn(ctx, conn, TableKafkaLogs, q, 1, func(b driver.Batch) error {
		return b.Append(topic, partition, id.Generation, id.TopicID, reason)
	})
	if err != nil {
		return fmt.Errorf("record log identity of %s/%d: %w", topic, partition, err)
	}
	return nil
}
