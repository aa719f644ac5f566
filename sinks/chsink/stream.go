package chsink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/taillight/taillight/sinks"
)

// Stream opens one trace_items INSERT for raw rows of the partitions of one
// StreamGroup: each Send is one data packet of that INSERT and Close ends
// it. The server squashes the packets of one INSERT into one part, so a
// stream costs ClickHouse what one block written whole costs, while the
// processor holds only a packet. The INSERT holds one pooled connection
// until Close or Abort.
func (w *Writer) Stream(ctx context.Context, topic string, partition int32) (sinks.RawStream, error) {
	if topic == "" || partition < 0 {
		return nil, fmt.Errorf("chsink: %w: %w: stream of topic %q partition %d", sinks.ErrSchema, errInvalidBlock, topic, partition)
	}
	conn, ctx := w.target(ctx, partition, false)
	start := time.Now()
	batch, err := conn.PrepareBatch(ctx, w.insertRaw)
	if err != nil {
		return nil, w.streamErr(fmt.Sprintf("open a row stream into %s", TableTraceItems), fmt.Errorf("prepare: %w", err))
	}
	return &rawStream{w: w, batch: batch, topic: topic, group: w.StreamGroup(partition), cols: take(w.rawFree), start: start}, nil
}

// StreamGroup implements sinks.Sink: every partition on a single
// server, the partitions of one shard in cluster mode.
func (w *Writer) StreamGroup(partition int32) int {
	if len(w.shards) == 0 || partition < 0 {
		return 0
	}
	return ShardIndex(partition, len(w.shards))
}

// rawStream is a sinks.RawStream on one open INSERT.
type rawStream struct {
	w     *Writer
	batch driver.Batch
	topic string
	group int
	cols  *rawColumns
	start time.Time
	rows  int
	done  bool // closed or aborted
}

func (s *rawStream) Send(rows []sinks.RawRow) error {
	if s.done {
		return errors.New("chsink: send on a closed row stream")
	}
	for i := range rows {
		if err := validateRow(rows[i].KafkaPartition, i, &rows[i]); err != nil {
			s.w.m.errors.WithLabelValues(TableTraceItems, ReasonInvalid).Inc()
			return err
		}
		if p := rows[i].KafkaPartition; p < 0 || s.w.StreamGroup(p) != s.group {
			err := fmt.Errorf("chsink: %w: %w: row %d of partition %d is not of the stream's shard %d",
				sinks.ErrSchema, errInvalidBlock, i, p, s.group)
			s.w.m.errors.WithLabelValues(TableTraceItems, ReasonInvalid).Inc()
			return err
		}
	}
	for lo, hi := 0, 0; lo < len(rows); lo = hi {
		hi = chunkEnd(rows, lo)
		s.cols.fillRows(s.topic, rows[lo:hi])
		err := s.cols.appendTo(s.batch)
		s.cols.reset()
		if err == nil {
			err = s.batch.Flush()
		}
		if err != nil {
			return s.w.streamErr(fmt.Sprintf("send %d rows into %s", hi-lo, TableTraceItems), err)
		}
		s.rows += hi - lo
	}
	return nil
}

func (s *rawStream) Close() error {
	if s.done {
		return errors.New("chsink: row stream closed twice")
	}
	s.done = true
	defer give(s.w.rawFree, s.cols)
	err := s.batch.Send()
	s.w.m.insertSeconds.WithLabelValues(TableTraceItems).Observe(time.Since(s.start).Seconds())
	if err != nil {
		return s.w.streamErr(fmt.Sprintf("insert %d rows into %s", s.rows, TableTraceItems), fmt.Errorf("send: %w", err))
	}
	s.w.m.rows.WithLabelValues(TableTraceItems).Add(float64(s.rows))
	return nil
}

func (s *rawStream) Abort() {
	if s.done {
		return
	}
	s.done = true
	_ = s.batch.Abort()
	give(s.w.rawFree, s.cols)
}

// streamErr classifies a stream failure and counts it.
func (w *Writer) streamErr(what string, err error) error {
	err = classify(what, err)
	w.m.errors.WithLabelValues(TableTraceItems, Reason(err)).Inc()
	return err
}
