package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/taillight/taillight/internal/backoff"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
)

// Group commit. ClickHouse pays per part written and merged, not per row:
// with one INSERT per partition per linger, a processor with several
// partitions made the server spend a core on small parts. So every
// partition's raw rows share one open INSERT per sink stream group (a
// sharedStream), blocks of all partitions are cut together (cutClock), and
// one committer stores the cut blocks with one rollup INSERT (Sink.Commit):
// a processor makes two parts per linger, whatever its partition count.
//
// The path is one-way: a worker cuts a block and submits it; from then on
// the committer owns it, through its raw rows (closing their streams, or
// reading the block again from Kafka), its DLQ records, the rollup commit
// and the Kafka offset commit, and finally sends the worker the result.

// sharedStream is one raw-row stream carrying the rows of every partition
// of a stream group until the committer closes it.
type sharedStream struct {
	st   sinks.RawStream
	done chan struct{} // closed once closed or broken; err is final then
	err  error
}

// streamKey names a shared stream: a sink stream group and the log name its
// rows are stored under.
type streamKey struct {
	group int
	log   string
}

// pending is a cut block with the committer, and how far it got.
type pending struct {
	c       *cut
	rawDone bool       // its raw rows are stored
	dlq     []dlqState // per DLQ entry of the block
}

// dlqState is the DLQ record of a block's entry as it is to be produced
// (its value dropped when the broker refuses its size), and whether it was.
type dlqState struct {
	rec   *kgo.Record
	acked bool
}

// committer stores the blocks workers cut, several partitions' at once.
// Each worker has at most one block with it: a worker waits for the result
// before it cuts the next.
type committer struct {
	*env
	sink sinks.Sink
	cl   *kgo.Client     // DLQ records and offset commits
	bg   context.Context // bounds the streams and the committer itself
	fail func(error)     // stops the processor (a schema error)

	// sem (capacity 1) guards streams and every Send. A channel, not a
	// mutex: Send may wait for the network, and a goroutine blocked on a
	// channel lets a synctest clock advance where one on a mutex would not.
	sem     chan struct{}
	streams map[streamKey]*sharedStream

	mu     sync.Mutex
	queue  []*pending
	notify chan struct{}
	done   chan struct{}

	// committed holds the offsets committed to Kafka after each stored
	// block, per partition, for the synchronous commit on revoke.
	commitMu  sync.Mutex
	committed map[int32]kgo.EpochOffset

	blocks  []*sinks.Block
	scratch []sinks.RawRow // rows of blocks read again from Kafka
	// since is when the batch being committed was taken (unix ns), or 0:
	// Ready reports writes stuck longer than StuckAfter.
	since atomic.Int64
}

func newCommitter(e *env, sink sinks.Sink, cl *kgo.Client, bg context.Context, fail func(error)) *committer {
	return &committer{
		env: e, sink: sink, cl: cl, bg: bg, fail: fail,
		sem:       make(chan struct{}, 1),
		streams:   make(map[streamKey]*sharedStream),
		notify:    make(chan struct{}, 1),
		done:      make(chan struct{}),
		committed: make(map[int32]kgo.EpochOffset),
	}
}

func (c *committer) lock()   { c.sem <- struct{}{} }
func (c *committer) unlock() { <-c.sem }

// send sends rows of partition on its group's open stream, opening one
// first. It returns the stream used (nil when none could be opened) and the
// error that broke it; a broken stream is done and no longer current.
func (c *committer) send(partition int32, log string, rows []sinks.RawRow) (*sharedStream, error) {
	g := streamKey{c.sink.StreamGroup(partition), log}
	c.lock()
	defer c.unlock()
	ss := c.streams[g]
	if ss == nil {
		// The committer's context, not the partition's: the stream carries
		// other partitions' rows too.
		st, err := c.sink.Stream(c.bg, log, partition)
		if err != nil {
			return nil, err
		}
		ss = &sharedStream{st: st, done: make(chan struct{})}
		c.streams[g] = ss
	}
	if err := ss.st.Send(rows); err != nil {
		ss.st.Abort()
		ss.err = err
		close(ss.done)
		delete(c.streams, g)
		return ss, err
	}
	return ss, nil
}

// closeStreams ends the open streams that the batch used (all, when batch
// is nil), so their rows are stored.
func (c *committer) closeStreams(batch []*pending) {
	var open []*sharedStream
	c.lock()
	for g, ss := range c.streams {
		if batch == nil || usedBy(ss, batch) {
			open = append(open, ss)
			delete(c.streams, g)
		}
	}
	c.unlock()
	for _, ss := range open {
		ss.err = ss.st.Close()
		close(ss.done)
	}
}

// abortStreams abandons the open streams (on stop: no block is left to
// commit their rows).
func (c *committer) abortStreams() {
	c.lock()
	defer c.unlock()
	for g, ss := range c.streams {
		ss.st.Abort()
		ss.err = errors.New("stream abandoned on stop")
		close(ss.done)
		delete(c.streams, g)
	}
}

func usedBy(ss *sharedStream, batch []*pending) bool {
	for _, p := range batch {
		for _, u := range p.c.streams {
			if u == ss {
				return true
			}
		}
	}
	return false
}

// submit hands a cut block to the committer; the result goes to its
// result channel.
func (c *committer) submit(ct *cut) {
	p := &pending{c: ct, rawDone: !c.stream, dlq: make([]dlqState, len(ct.dlq))}
	for i, e := range ct.dlq {
		p.dlq[i].rec = e.rec
	}
	c.mu.Lock()
	c.queue = append(c.queue, p)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// takeAll returns the queued blocks, appended to batch.
func (c *committer) takeAll(batch []*pending) []*pending {
	c.mu.Lock()
	defer c.mu.Unlock()
	batch = append(batch, c.queue...)
	clear(c.queue)
	c.queue = c.queue[:0]
	return batch
}

// idleClose is how long the committer waits with nothing to commit before
// it closes the open streams anyway: their rows may be of blocks that will
// never be committed here (a partition lost or revoked meanwhile).
func (c *committer) idleClose() time.Duration {
	return min(max(2*c.cfg.Linger, time.Second), 30*time.Second)
}

// gatherMax bounds how long a batch waits for the blocks of other
// partitions due at the same cut.
func (c *committer) gatherMax() time.Duration { return c.cfg.Linger / 4 }

// run commits batches until bg ends.
func (c *committer) run() {
	defer close(c.done)
	idle := time.NewTimer(c.idleClose())
	defer idle.Stop()
	var batch []*pending
	for {
		batch = c.takeAll(batch[:0])
		if len(batch) == 0 {
			idle.Reset(c.idleClose())
			select {
			case <-c.bg.Done():
				c.abortStreams()
				for _, p := range c.takeAll(nil) {
					c.report(p, c.bg.Err())
				}
				return
			case <-c.notify:
			case <-idle.C:
				c.closeStreams(nil)
			}
			continue
		}
		batch = c.gather(batch)
		c.commit(batch)
		clear(batch)
	}
}

// gather adds to batch the blocks of other partitions cut at the same
// time, waiting up to gatherMax for workers still busy to cut theirs.
func (c *committer) gather(batch []*pending) []*pending {
	var timer *time.Timer
	for {
		tick := int64(0)
		for _, p := range batch {
			tick = max(tick, p.c.tick)
		}
		if tick == 0 || !c.clock.dueBy(tick, func(key uint64) bool { return inBatch(batch, key) }) {
			break
		}
		if timer == nil {
			timer = time.NewTimer(c.gatherMax())
			defer timer.Stop()
		}
		select {
		case <-c.notify:
		case <-timer.C:
			return c.takeAll(batch)
		case <-c.bg.Done():
			return batch
		}
		batch = c.takeAll(batch)
	}
	return batch
}

func inBatch(batch []*pending, key uint64) bool {
	for _, p := range batch {
		if p.c.key == key {
			return true
		}
	}
	return false
}

// commit stores a batch: raw rows (closing the shared streams its blocks
// used, reading broken ones again from Kafka), DLQ records, then every
// block's rollups at once, then the Kafka offsets. Transient failures are
// retried with backoff, the partitions paused meanwhile; blocks cut
// meanwhile join the batch; blocks of partitions given up are dropped from
// it. Every block's worker gets the result.
func (c *committer) commit(batch []*pending) {
	c.since.Store(time.Now().UnixNano())
	defer c.since.Store(0)
	attempts := 0
	err := c.backoff().Retry(c.bg, func(context.Context) error {
		if attempts > 0 {
			n := len(batch)
			batch = c.takeAll(batch) // blocks cut meanwhile join the retry
			c.setFailing(batch[n:], true)
		}
		for {
			batch = c.dropCancelled(batch)
			if len(batch) == 0 {
				return nil
			}
			err := c.attempt(batch)
			switch {
			case err == nil:
				return nil
			case c.bg.Err() != nil:
				return backoff.Stop(err)
			case cancelled(batch):
				continue // a partition given up broke the attempt: go on without it
			case errors.Is(err, sinks.ErrSchema):
				err = fmt.Errorf("write blocks of partitions %v: %w", partitions(batch), err)
				c.fail(err)
				return backoff.Stop(err)
			}
			return err
		}
	}, func(attempt int, err error) {
		attempts = attempt
		c.m.retries.Inc()
		if attempt == 1 {
			c.env.log.Warn("block write failed; retrying with backoff, partitions paused",
				"partitions", partitions(batch), "err", err)
		}
		c.setFailing(batch, true)
	})
	if len(batch) == 0 {
		return
	}
	if attempts > 0 {
		if err == nil {
			c.env.log.Info("block write succeeded again; partitions resumed", "partitions", partitions(batch), "failed_attempts", attempts)
		}
		c.setFailing(batch, false)
	}
	if err == nil {
		c.stored(batch)
	}
	for _, p := range batch {
		c.report(p, err)
	}
}

func (c *committer) setFailing(batch []*pending, on bool) {
	for _, p := range batch {
		c.failing.set(p.c.ctx, p.c.part, on)
	}
}

// attempt stores batch once.
func (c *committer) attempt(batch []*pending) error {
	if c.stream {
		c.closeStreams(batch)
	}
	for _, p := range batch {
		if err := c.storeRaw(p); err != nil {
			return err
		}
	}
	for _, p := range batch {
		if err := c.sendDLQ(p); err != nil {
			return err
		}
	}
	c.blocks = c.blocks[:0]
	for _, p := range batch {
		c.blocks = append(c.blocks, &p.c.blk)
	}
	defer clear(c.blocks)
	// Cancelled when a partition of the batch is given up: its block must
	// not be written any more (the attempt is made again without it).
	ctx, cancel := context.WithCancel(c.bg)
	defer cancel()
	for _, p := range batch {
		defer context.AfterFunc(p.c.ctx, cancel)()
	}
	start := time.Now()
	if err := c.sink.Commit(ctx, c.blocks); err != nil {
		return err
	}
	c.m.flush.Observe(time.Since(start).Seconds())
	c.m.commitBlocks.Observe(float64(len(batch)))
	return nil
}

// stored counts a stored batch and commits its offsets to Kafka, for lag
// monitoring: the sink holds the delivery watermark.
func (c *committer) stored(batch []*pending) {
	offsets := make(map[int32]kgo.EpochOffset, len(batch))
	for _, p := range batch {
		ct := p.c
		c.m.records.Add(float64(ct.records))
		c.m.rows.Add(float64(ct.rows))
		c.m.blocks.Inc()
		if ct.maxEventMs > 0 {
			c.m.freshness.Set(time.Since(time.UnixMilli(ct.maxEventMs)).Seconds())
		}
		offsets[ct.part] = kgo.EpochOffset{Epoch: ct.lastEpoch, Offset: ct.blk.LastOffset + 1}
	}
	if c.env.log.Enabled(c.bg, slog.LevelDebug) {
		blocks := make([]string, len(batch))
		for i, p := range batch {
			blocks[i] = fmt.Sprintf("%d:%d:%s", p.c.part, p.c.records, p.c.why)
		}
		c.env.log.Debug("blocks committed", "blocks", blocks)
	}
	c.commitMu.Lock()
	for part, o := range offsets {
		c.committed[part] = o
	}
	c.commitMu.Unlock()
	// The callback runs after run has cleared and reused batch: it may only
	// read offsets.
	c.cl.CommitOffsets(c.bg, map[string]map[int32]kgo.EpochOffset{c.cfg.Topic: offsets}, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err == nil {
			err = commitErr(resp)
		}
		if err != nil {
			c.m.kafkaCommitErrors.Inc()
			c.env.log.Debug("kafka commit failed (lag metric only)", "partitions", slices.Sorted(maps.Keys(offsets)), "err", err)
		}
	})
}

// report hands a block back to its worker with the result, releasing the
// bytes its rows held.
func (c *committer) report(p *pending, err error) {
	c.budget.hold(-p.c.held)
	p.c.result <- err
}

// commitSync commits to Kafka, and waits for, the offsets after the last
// blocks stored of the given partitions, before a revoke or stop returns.
func (c *committer) commitSync(ctx context.Context, parts []int32) {
	offsets := c.forget(parts)
	if len(offsets) == 0 {
		return // nothing stored: the committed offsets stay where they were
	}
	c.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{c.cfg.Topic: offsets}, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err == nil {
			err = commitErr(resp)
		}
		if err != nil {
			c.m.kafkaCommitErrors.Inc()
			c.env.log.Warn("kafka commit on revoke failed (lag metric only)", "partitions", parts, "err", err)
		}
	})
}

// forget returns and drops the committed offsets of the given partitions.
func (c *committer) forget(parts []int32) map[int32]kgo.EpochOffset {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	out := make(map[int32]kgo.EpochOffset)
	for _, part := range parts {
		if o, ok := c.committed[part]; ok {
			out[part] = o
			delete(c.committed, part)
		}
	}
	return out
}

// sendDLQ produces the block's poison records not yet acknowledged, in one
// batch, and waits for the acknowledgements.
func (c *committer) sendDLQ(p *pending) error {
	var firstErr error
	for pass := 0; pass < 2; pass++ {
		idx := make(map[*kgo.Record]int) // results come in completion order
		var recs []*kgo.Record
		for i, e := range p.dlq {
			if !e.acked {
				rec := *e.rec // a fresh record per attempt: kgo owns it until acknowledged
				idx[&rec] = i
				recs = append(recs, &rec)
			}
		}
		if len(recs) == 0 {
			return nil
		}
		tooLarge := false
		for _, r := range c.cl.ProduceSync(p.c.ctx, recs...) {
			i := idx[r.Record]
			e := &p.dlq[i]
			switch {
			case r.Err == nil:
				e.acked = true
				c.m.dlq.WithLabelValues(p.c.dlq[i].reason).Inc()
			case errors.Is(r.Err, kerr.MessageTooLarge) && len(e.rec.Value) > schemas.MaxItemBytes:
				// Keep the coordinates and the reason; the value is lost.
				// A copy: the block's own record is not changed.
				d := *e.rec
				d.Headers = append(d.Headers[:len(d.Headers):len(d.Headers)], kgo.RecordHeader{Key: DLQHeaderValueDropped, Value: strconv.AppendInt(nil, int64(len(d.Value)), 10)})
				d.Value = nil
				e.rec = &d
				tooLarge = true
			case errors.Is(r.Err, kerr.MessageTooLarge):
				tooLarge = true // failed with an oversize record of its batch; retry alone
			case firstErr == nil:
				firstErr = fmt.Errorf("produce to DLQ topic %s: %w", c.cfg.DLQTopic, r.Err)
			}
		}
		if !tooLarge {
			break
		}
	}
	return firstErr
}

// dropCancelled removes the blocks of partitions given up (lost, or out of
// time on revoke), telling their workers.
func (c *committer) dropCancelled(batch []*pending) []*pending {
	kept := batch[:0]
	for _, p := range batch {
		if err := p.c.ctx.Err(); err != nil {
			c.failing.set(p.c.ctx, p.c.part, false)
			c.report(p, err)
			continue
		}
		kept = append(kept, p)
	}
	clear(batch[len(kept):])
	return kept
}

func cancelled(batch []*pending) bool {
	for _, p := range batch {
		if p.c.ctx.Err() != nil {
			return true
		}
	}
	return false
}

func partitions(batch []*pending) []int32 {
	ps := make([]int32, len(batch))
	for i, p := range batch {
		ps[i] = p.c.part
	}
	return ps
}

func commitErr(resp *kmsg.OffsetCommitResponse) error {
	if resp == nil {
		return nil
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return err
			}
		}
	}
	return nil
}
