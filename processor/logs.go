package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/sinks"
)

// Log identity (docs/reliability.md "Log changes"). A watermark is an
// offset, and an offset means something only within one Kafka log. On
// assignment and on OFFSET_OUT_OF_RANGE the processor compares what the
// sink recorded with what the broker reports, and never resets a partition
// with a watermark by itself:
//
//   - a watermark below the log start: the records between were removed
//     (retention, truncation) before they were read; counted, logged, and
//     consuming goes on from the log start;
//   - a watermark past the log end, or a topic ID other than the one
//     recorded: the partition is a new log whose offsets collide with the
//     stored ones. It is halted (not consumed, /readyz not ready) until an
//     operator runs `taillight relog`, which records the next generation:
//     the partition then starts over under a new log name, and stored rows
//     are never touched.

// Anomaly kinds (the kind label of taillight_processor_log_anomalies_total).
const (
	anomalyBelowStart = "below_log_start"
	anomalyPastEnd    = "past_log_end"
	anomalyTopicID    = "topic_id_changed"
)

// KafkaLog is what the broker reports of a topic's partitions.
type KafkaLog struct {
	TopicID string          // base64, as kadm prints it; "" when the broker has no topic IDs
	Start   map[int32]int64 // log start offset per partition
	End     map[int32]int64 // log end offset (high watermark) per partition
}

// ReadKafkaLog asks the broker for topic's ID and the start and end offsets
// of its partitions.
func ReadKafkaLog(ctx context.Context, adm *kadm.Client, topic string) (KafkaLog, error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return KafkaLog{}, fmt.Errorf("read metadata of topic %s: %w", topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok {
		return KafkaLog{}, fmt.Errorf("topic %s: %w", topic, kerr.UnknownTopicOrPartition)
	}
	if td.Err != nil {
		return KafkaLog{}, fmt.Errorf("topic %s: %w", topic, td.Err)
	}
	kl := KafkaLog{Start: make(map[int32]int64), End: make(map[int32]int64)}
	if td.ID != (kadm.TopicID{}) {
		kl.TopicID = td.ID.String()
	}
	for _, list := range []struct {
		fn  func(context.Context, ...string) (kadm.ListedOffsets, error)
		dst map[int32]int64
		end string
	}{{adm.ListStartOffsets, kl.Start, "start"}, {adm.ListEndOffsets, kl.End, "end"}} {
		offs, err := list.fn(ctx, topic)
		if err != nil {
			return KafkaLog{}, fmt.Errorf("list %s offsets of topic %s: %w", list.end, topic, err)
		}
		var firstErr error
		offs.Each(func(o kadm.ListedOffset) {
			if o.Err != nil && firstErr == nil {
				firstErr = fmt.Errorf("list %s offset of %s/%d: %w", list.end, topic, o.Partition, o.Err)
			}
			list.dst[o.Partition] = o.Offset
		})
		if firstErr != nil {
			return KafkaLog{}, firstErr
		}
	}
	return kl, nil
}

// LogCheck compares a partition's stored state with its Kafka log.
type LogCheck struct {
	Topic     string
	Partition int32
	Identity  sinks.LogIdentity // as recorded; zero when Recorded is false
	Recorded  bool
	Watermark sinks.Watermark // of LogName(Topic, Identity.Generation)
	Log       KafkaLog
}

// Problem names a change of log that the stored watermark cannot survive
// (kind anomalyTopicID or anomalyPastEnd, with a description), or returns
// "" when consuming may go on.
func (c LogCheck) Problem() (kind, msg string) {
	if c.Recorded && c.Identity.TopicID != "" && c.Log.TopicID != "" && c.Identity.TopicID != c.Log.TopicID {
		return anomalyTopicID, fmt.Sprintf("topic %s has ID %s, but partition %d was stored under ID %s: the topic was deleted and created again (or this is another cluster)",
			c.Topic, c.Log.TopicID, c.Partition, c.Identity.TopicID)
	}
	if end, ok := c.Log.End[c.Partition]; ok && c.Watermark.Next > end {
		return anomalyPastEnd, fmt.Sprintf("the stored watermark of %s/%d is offset %d, past the log end %d: the log was truncated, replaced or failed over",
			c.Topic, c.Partition, c.Watermark.Next, end)
	}
	return "", ""
}

// relogHint is the recovery step every halt names.
func relogHint(topic string, part int32) string {
	return fmt.Sprintf("to start the partition over under a new log identity (stored rows are kept), run: taillight relog -topic %s -partitions %d, then restart this processor", topic, part)
}

// halt stops consuming a partition whose log changed: it is paused, its
// records are dropped, and Ready reports it until the partition is revoked.
func (p *Processor) halt(part int32, kind, msg string) {
	p.mu.Lock()
	_, was := p.halted[part]
	p.halted[part] = kind + ": " + msg
	p.m.halted.Set(float64(len(p.halted)))
	p.mu.Unlock()
	if was {
		return
	}
	p.m.logAnomalies.WithLabelValues(kind).Inc()
	p.cl.PauseFetchPartitions(map[string][]int32{p.cfg.Topic: {part}})
	p.log.Error("partition halted: its Kafka log changed under the stored watermark; nothing is consumed or overwritten",
		"partition", part, "kind", kind, "problem", msg, "recovery", relogHint(p.cfg.Topic, part))
}

func (p *Processor) isHalted(part int32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.halted[part]
	return ok
}

// haltedErr describes the halted partitions for Ready, or returns nil.
func (p *Processor) haltedErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.halted) == 0 {
		return nil
	}
	var errs []error
	for part, why := range p.halted {
		errs = append(errs, fmt.Errorf("partition %d halted (%s); %s", part, why, relogHint(p.cfg.Topic, part)))
	}
	return errors.Join(errs...)
}

// readKafkaLog is ReadKafkaLog with retries until ctx ends.
func (p *Processor) readKafkaLog(ctx context.Context) (KafkaLog, error) {
	var kl KafkaLog
	err := p.backoff().Retry(ctx, func(ctx context.Context) error {
		var err error
		kl, err = p.kafkaLog(ctx)
		return err
	}, func(attempt int, err error) {
		if attempt == 1 {
			p.log.Warn("reading the topic's offsets failed; retrying", "topic", p.cfg.Topic, "err", err)
		}
	})
	return kl, err
}

// kafkaLog is ReadKafkaLog of the topic, bounded by KafkaTimeout.
func (p *Processor) kafkaLog(ctx context.Context) (KafkaLog, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.KafkaTimeout)
	defer cancel()
	return ReadKafkaLog(ctx, kadm.NewClient(p.cl), p.cfg.Topic)
}

// resolveLog decides where an assigned partition resumes: it records the
// partition's log identity when none is, picks its log name and
// watermark, and halts it on a change of log. It returns the offset to
// consume from, or ok false when the partition is halted.
func (p *Processor) resolveLog(ctx context.Context, part int32, kl KafkaLog) (off kgo.Offset, ok bool, err error) {
	c := LogCheck{Topic: p.cfg.Topic, Partition: part, Log: kl}
	c.Identity, c.Recorded, err = p.logIdentity(ctx, part)
	if err != nil {
		return off, false, err
	}
	name := sinks.LogName(p.cfg.Topic, c.Identity.Generation)
	c.Watermark, err = p.watermark(ctx, name, part)
	if err != nil {
		return off, false, err
	}
	if kind, msg := c.Problem(); kind != "" {
		p.halt(part, kind, msg)
		return off, false, nil
	}
	if !c.Recorded || c.Identity.TopicID == "" && kl.TopicID != "" {
		id := sinks.LogIdentity{Generation: c.Identity.Generation, TopicID: kl.TopicID}
		if err := p.setLogIdentity(ctx, part, id); err != nil {
			return off, false, err
		}
	}
	p.mu.Lock()
	p.logNames[part] = name
	p.wms[part] = c.Watermark
	p.mu.Unlock()
	wm := c.Watermark
	start := kl.Start[part]
	switch {
	case wm.Next < 0:
		// A log the sink has never seen: from its first record.
		return kgo.NewOffset().At(start).WithEpoch(-1), true, nil
	case wm.Next < start:
		p.lostRecords(part, wm.Next, start)
		return kgo.NewOffset().At(start).WithEpoch(-1), true, nil
	}
	// Epoch -1: we set the position ourselves; no truncation check.
	return kgo.NewOffset().At(wm.Next).WithEpoch(-1), true, nil
}

// lostRecords counts and logs records removed from Kafka before they were
// read: from (the watermark or the fetch position) up to the log start.
func (p *Processor) lostRecords(part int32, from, start int64) {
	n := start - from
	p.m.logLost.Add(float64(n))
	p.m.logAnomalies.WithLabelValues(anomalyBelowStart).Inc()
	p.log.Error("records removed from Kafka before they were read are lost; consuming goes on from the log start",
		"partition", part, "position", from, "log_start", start, "lost_records", n,
		"why", "retention or truncation removed them while the processor was behind or stopped; raise the topic's retention or the processors' capacity")
}

func (p *Processor) logIdentity(ctx context.Context, part int32) (sinks.LogIdentity, bool, error) {
	var (
		id sinks.LogIdentity
		ok bool
	)
	err := p.retrySink(ctx, "read log identity", part, func(ctx context.Context) error {
		var err error
		id, ok, err = p.sink.LogIdentity(ctx, p.cfg.Topic, part)
		return err
	})
	return id, ok, err
}

func (p *Processor) setLogIdentity(ctx context.Context, part int32, id sinks.LogIdentity) error {
	return p.retrySink(ctx, "record log identity", part, func(ctx context.Context) error {
		return p.sink.SetLogIdentity(ctx, p.cfg.Topic, part, id)
	})
}

// outOfRange handles OFFSET_OUT_OF_RANGE on fetch (franz-go does not reset:
// ConsumeResetOffset is NoResetOffset). Below the log start the loss is
// counted and consuming resumes at the start; past the end the partition
// is halted. It runs in the poll loop, between polls, where SetOffsets is
// safe (rebalances wait for AllowRebalance).
func (p *Processor) outOfRange(ctx context.Context, parts []int32) {
	kl, err := p.kafkaLog(ctx)
	if err != nil {
		p.log.Warn("offset out of range, and reading the topic's offsets failed; retried on the next fetch", "partitions", parts, "err", err)
		return
	}
	set := make(map[int32]kgo.EpochOffset)
	for _, part := range parts {
		if p.isHalted(part) {
			continue
		}
		pos := p.position(part)
		start, end := kl.Start[part], kl.End[part]
		switch {
		case pos < start:
			p.lostRecords(part, pos, start)
			set[part] = kgo.EpochOffset{Epoch: -1, Offset: start}
		case pos > end:
			p.halt(part, anomalyPastEnd, fmt.Sprintf("the fetch position of %s/%d is offset %d, past the log end %d: the log was truncated, replaced or failed over",
				p.cfg.Topic, part, pos, end))
			p.stopWorker(part, true)
		default:
			set[part] = kgo.EpochOffset{Epoch: -1, Offset: pos} // in range again (a lagging replica): fetch again
		}
	}
	if len(set) > 0 {
		p.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{p.cfg.Topic: set})
	}
}

// position is the next offset the partition is to consume: after the last
// record handed to its worker, else its watermark, else -1.
func (p *Processor) position(part int32) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.parts[part]; w != nil {
		if n := w.next.Load(); n >= 0 {
			return n
		}
	}
	if wm, ok := p.wms[part]; ok {
		return wm.Next
	}
	return -1
}

// stopWorker stops the worker of a halted partition: flushed when what it
// read came from the log before the change, else dropped.
func (p *Processor) stopWorker(part int32, flush bool) {
	p.mu.Lock()
	w := p.parts[part]
	delete(p.parts, part)
	p.mu.Unlock()
	switch {
	case w == nil:
	case flush:
		p.finish([]*worker{w})
	default:
		p.drop(w)
	}
}

// watchLog checks the topic's ID every interval and halts every owned
// partition when it changes: a topic deleted and created again while this
// processor runs may answer fetches at our positions with records of the
// new log.
func (p *Processor) watchLog(ctx context.Context, every time.Duration) {
	if every > 0 {
		tick(ctx, every, func() { p.checkTopicID(ctx) })
	}
}

// checkTopicID is one check of watchLog.
func (p *Processor) checkTopicID(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, p.cfg.KafkaTimeout)
	md, err := kadm.NewClient(p.cl).Metadata(rctx, p.cfg.Topic)
	cancel()
	if err != nil {
		return
	}
	p.mu.Lock()
	first := p.topicID
	p.mu.Unlock()
	td, ok := md.Topics[p.cfg.Topic]
	if first == "" || !ok || td.Err != nil || td.ID == (kadm.TopicID{}) || td.ID.String() == first {
		return
	}
	p.mu.Lock()
	parts := make([]int32, 0, len(p.wms))
	for part := range p.wms {
		parts = append(parts, part)
	}
	p.mu.Unlock()
	for _, part := range parts {
		p.halt(part, anomalyTopicID, fmt.Sprintf("topic %s changed ID from %s to %s while it was being consumed: it was deleted and created again",
			p.cfg.Topic, first, td.ID.String()))
		// Dropped, not flushed: records since the last block may be
		// of either log.
		p.stopWorker(part, false)
	}
}

// RelogResult is what Relog found and did for one partition.
type RelogResult struct {
	Partition int32
	From      sinks.LogIdentity // as recorded before (zero when none was)
	To        sinks.LogIdentity // as recorded now; equal to From when left alone
	Problem   string            // the change of log found, or "" when in order
}

// Relog starts each partition of topic whose Kafka log changed under its
// stored watermark (LogCheck.Problem) over under a new log identity: it
// records the next generation with the topic's current ID, so a processor
// assigned the partition stores it under the next log name from the start
// of its log. Stored rows are not touched. Partitions in order are left
// alone: a new generation over a log already stored would store it twice.
// parts limits the partitions considered (nil: all of the topic's).
func Relog(ctx context.Context, adm *kadm.Client, s sinks.Sink, topic string, parts []int32) ([]RelogResult, error) {
	kl, err := ReadKafkaLog(ctx, adm, topic)
	if err != nil {
		return nil, err
	}
	if parts == nil {
		for part := range kl.End {
			parts = append(parts, part)
		}
		slices.Sort(parts)
	}
	out := make([]RelogResult, 0, len(parts))
	for _, part := range parts {
		if _, ok := kl.End[part]; !ok {
			return out, fmt.Errorf("topic %s has no partition %d", topic, part)
		}
		c := LogCheck{Topic: topic, Partition: part, Log: kl}
		if c.Identity, c.Recorded, err = s.LogIdentity(ctx, topic, part); err != nil {
			return out, err
		}
		if c.Watermark, err = s.Watermark(ctx, sinks.LogName(topic, c.Identity.Generation), part); err != nil {
			return out, err
		}
		r := RelogResult{Partition: part, From: c.Identity, To: c.Identity}
		_, r.Problem = c.Problem()
		if r.Problem != "" {
			r.To = sinks.LogIdentity{Generation: c.Identity.Generation + 1, TopicID: kl.TopicID}
			if err := s.SetLogIdentity(ctx, topic, part, r.To); err != nil {
				return out, err
			}
		}
		out = append(out, r)
	}
	return out, nil
}
