package processor

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
)

// storeRaw makes sure a block's raw rows are stored before its rollups are
// written. Streaming, closeStreams has closed the shared streams that
// carried them; when one broke, the block is read again from Kafka. Without
// streaming the rows go with the block's commit.
func (c *committer) storeRaw(p *pending) error {
	if p.rawDone {
		return nil
	}
	ct := p.c
	err := ct.streamErr
	for _, ss := range ct.streams {
		<-ss.done
		if err == nil {
			err = ss.err
		}
	}
	if err != nil {
		c.env.log.Debug("row stream failed; reading the block again from Kafka", "partition", ct.part,
			"first_offset", ct.blk.FirstOffset, "last_offset", ct.blk.LastOffset, "err", err)
		if err := c.replay(ct); err != nil {
			return err
		}
	}
	p.rawDone = true
	return nil
}

// replay sends the raw rows of a block's offsets on a new stream, reading
// the records again from Kafka with a client of its own (no group, nothing
// committed): the worker let go of them once sent on the stream that
// failed. Rows are rebuilt exactly as the first time (env.decode and
// fillRow depend on the record alone); poison records are skipped, their
// DLQ entries are in the block. The rollups computed the first time are
// kept.
func (c *committer) replay(ct *cut) error {
	cfg := &c.cfg
	first, last := ct.blk.FirstOffset, ct.blk.LastOffset
	opts := []kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: {ct.part: kgo.NewOffset().At(first)}}),
	}
	// The stream first: while ClickHouse is down it fails at once, before
	// a Kafka client is made for nothing.
	st, err := c.sink.Stream(ct.ctx, ct.log, ct.part)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			st.Abort()
		}
	}()
	cl, err := cfg.Kafka.NewClient(c.env.log, nil, "", opts...)
	if err != nil {
		return fmt.Errorf("read block %d..%d of partition %d again: %w", first, last, ct.part, err)
	}
	defer cl.Close()
	rows := c.scratch[:0]
	defer func() {
		resetRows(rows)
		c.scratch = rows[:0]
	}()
	var item schemas.TraceItem
	var dec schemas.Decoder
	send := func() error {
		err := st.Send(rows)
		resetRows(rows)
		rows = rows[:0]
		return err
	}
	read := 0
	for done := false; !done; {
		// Bounded: one unavailable partition must not hold the group
		// commit, and every partition's commits with it, for ever.
		pctx, cancel := context.WithTimeout(ct.ctx, cfg.KafkaTimeout)
		fs := cl.PollRecords(pctx, cfg.PacketRows)
		cancel()
		if err := ct.ctx.Err(); err != nil {
			return err
		}
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("read block %d..%d of partition %d again: %w", first, last, ct.part, err)
		}
		for _, rec := range fs.Records() {
			if rec.Offset > last {
				done = true
				break
			}
			read++
			done = rec.Offset == last
			if reason, _ := c.decode(&dec, &item, rec); reason != "" {
				continue
			}
			if n := len(rows); n < cap(rows) {
				rows = rows[:n+1]
			} else {
				rows = append(rows, sinks.RawRow{})
			}
			c.fillRow(&rows[len(rows)-1], &item, rec)
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
	if read < ct.records {
		// Retention or compaction removed records since they were read.
		c.env.log.Warn("block read again from Kafka is shorter than the first time; raw rows of the missing records are lost",
			"partition", ct.part, "first_offset", first, "last_offset", last, "records_first", ct.records, "records_again", read)
	}
	c.m.replays.Inc()
	c.env.log.Info("block read again from Kafka and its raw rows sent", "partition", ct.part, "first_offset", first, "last_offset", last, "records", read)
	return nil
}
