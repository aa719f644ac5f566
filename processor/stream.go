package processor

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
)

// storeRaw makes sure f's raw rows are stored before its rollups are
// written. Streaming, the committer has closed the shared streams that
// carried them; when one broke, the block is read again from Kafka. Without
// streaming the rows go with the block's write.
func (w *worker) storeRaw(f *flight) error {
	if f.rawDone {
		return nil
	}
	err := f.streamErr
	for _, ss := range f.shared {
		<-ss.done
		if err == nil {
			err = ss.err
		}
	}
	if err != nil {
		w.p.log.Debug("row stream failed; reading the block again from Kafka", "partition", w.id,
			"first_offset", f.blk.FirstOffset, "last_offset", f.blk.LastOffset, "err", err)
		if err := w.replay(f); err != nil {
			return err
		}
	}
	clear(f.shared)
	f.shared = f.shared[:0]
	f.rawDone, f.streamErr = true, nil
	return nil
}

// replay sends the raw rows of f's offsets on a new stream, reading the
// records again from Kafka with a client of its own (no group, nothing
// committed): the worker let go of them once sent on the stream that
// failed. Rows are rebuilt exactly as the first time (fillRow depends on
// the record alone); poison records are skipped, their DLQ entries are
// still in f. The rollups computed the first time are kept.
func (w *worker) replay(f *flight) error {
	cfg := &w.p.cfg
	first, last := f.blk.FirstOffset, f.blk.LastOffset
	opts := []kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: {w.id: kgo.NewOffset().At(first)}}),
	}
	// The stream first: while ClickHouse is down it fails at once, before
	// a Kafka client is made for nothing.
	st, err := w.p.streamer.Stream(w.ctx, w.log, w.id)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			st.Abort()
		}
	}()
	cl, err := cfg.Kafka.NewClient(w.p.log, nil, "", opts...)
	if err != nil {
		return fmt.Errorf("read block %d..%d of partition %d again: %w", first, last, w.id, err)
	}
	defer cl.Close()
	rows := f.blk.Rows[:0]
	defer func() {
		releaseRows(rows)
		f.blk.Rows = rows[:0]
	}()
	var item schemas.TraceItem
	var dec schemas.Decoder
	send := func() error {
		err := st.Send(rows)
		releaseRows(rows)
		rows = rows[:0]
		return err
	}
	read := 0
	for done := false; !done; {
		// Bounded: one unavailable partition must not hold the group
		// commit, and every partition's commits with it, for ever.
		pctx, cancel := context.WithTimeout(w.ctx, cfg.KafkaTimeout)
		fs := cl.PollRecords(pctx, cfg.PacketRows)
		cancel()
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("read block %d..%d of partition %d again: %w", first, last, w.id, err)
		}
		for _, rec := range fs.Records() {
			if rec.Offset > last {
				done = true
				break
			}
			read++
			done = rec.Offset == last
			if len(rec.Value) > schemas.MaxItemBytes || dec.DecodeZeroCopy(rec.Value, &item) != nil {
				continue
			}
			w.p.policy.Item(&item)
			if n := len(rows); n < cap(rows) {
				rows = rows[:n+1]
			} else {
				rows = append(rows, sinks.RawRow{})
			}
			w.p.fillRow(&rows[len(rows)-1], &item, rec)
			if len(rows) >= cfg.PacketRows {
				if err := send(); err != nil {
					return err
				}
			}
		}
	}
	if len(rows) > 0 {
		if err := send(); err != nil {
			return err
		}
	}
	closed = true
	if err := st.Close(); err != nil {
		return err
	}
	if read < f.records {
		// Retention or compaction removed records since they were read.
		w.p.log.Warn("block read again from Kafka is shorter than the first time; raw rows of the missing records are lost",
			"partition", w.id, "first_offset", first, "last_offset", last, "records_first", f.records, "records_again", read)
	}
	w.p.m.replays.Inc()
	w.p.log.Info("block read again from Kafka and its raw rows sent", "partition", w.id, "first_offset", first, "last_offset", last, "records", read)
	return nil
}
