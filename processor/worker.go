package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/taillight/taillight/processor/rollup"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
)

// worker owns one partition: it decodes the records the poll loop hands it,
// builds the partition's block and writes it.
type worker struct {
	p      *Processor
	id     int32
	log    string // the log name blocks are stored under (sinks.LogName)
	label  string
	ctx    context.Context // cancelled on loss or when a final flush times out
	cancel context.CancelFunc
	done   chan struct{}

	finishOnce sync.Once
	finishing  chan struct{}

	notify chan struct{}
	mu     sync.Mutex // guards inbox, paused, retrying
	inbox  []*kgo.Record
	paused bool
	retry  bool

	hw      atomic.Int64 // partition high watermark from the last fetch
	next    atomic.Int64 // offset after the last record pushed, or -1
	lagBase atomic.Int64 // end of the last written block (next offset), or the first offset seen
	due     atomic.Int64 // when the block being filled is cut by time (unix ns), or 0

	// Owned by run.
	blk        sinks.Block
	acc        *rollup.Accumulator
	item       schemas.TraceItem
	dec        schemas.Decoder
	dlq        []dlqEntry
	records    int
	rows       int // raw rows of the block, sent or held
	bytes      int
	unsent     int64 // record bytes added since the rows were last sent (Processor.held)
	maxEventMs int64
	lastEpoch  int32
	minReach   int64 // the first block must reach this offset (Watermark.MaxRawOffset)
	wroteNext  int64 // LastOffset+1 of the last block written, or -1
	wroteEpoch int32 // leader epoch of that block's last record
	lingerDue  bool
	deferred   bool      // the linger cut is put off while the partition is behind
	blockStart time.Time // when the block's first record was added
	timer      *time.Timer
	spare      []*kgo.Record

	// Streaming (p.streamer set): blk.Rows holds at most a packet; full
	// packets go out on the processor's shared streams, listed in shared.
	// streamErr is the error that broke one: the block's remaining rows are
	// dropped and the committer reads the block again from Kafka.
	shared    []*sharedStream
	streamErr error

	// One block may be written while the next one fills: inflight is with
	// the committer, which reports on result; spareF holds the buffers of
	// the block written before it, for reuse.
	inflight *flight
	spareF   *flight
	result   chan error
}

// flight is a block handed to the writer goroutine, with what the worker
// needs once it is stored.
type flight struct {
	w          *worker
	tick       int64 // the cut it was due at (unix ns), or 0 when cut by size or on revoke
	blk        sinks.Block
	dlq        []dlqEntry
	records    int
	rows       int
	maxEventMs int64
	lastEpoch  int32
	unsent     int64 // record bytes still held by the block's rows (not streamed)
	// Streaming: the shared streams that carried the block's rows, the
	// error that broke one while the block filled, and whether its raw rows
	// are stored.
	shared    []*sharedStream
	streamErr error
	rawDone   bool
}

type dlqEntry struct {
	rec    *kgo.Record
	reason string
	acked  bool
}

func newWorker(p *Processor, id int32, log string, wm sinks.Watermark) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{
		p: p, id: id, log: log, label: strconv.Itoa(int(id)),
		ctx: ctx, cancel: cancel,
		done:      make(chan struct{}),
		finishing: make(chan struct{}),
		notify:    make(chan struct{}, 1),
		result:    make(chan error, 1),
		acc:       rollup.New(),
		minReach:  wm.MaxRawOffset,
		timer:     time.NewTimer(time.Hour),
	}
	w.timer.Stop()
	w.blk.Topic, w.blk.Partition = log, id
	w.blk.Reset()
	w.lagBase.Store(-1)
	w.next.Store(-1)
	w.wroteNext = -1
	return w
}

// highWater is how many unprocessed records make the poll loop wait.
func (w *worker) highWater() int { return 2 * w.p.cfg.MaxPollRecords }

// push hands polled records to the worker; it never blocks.
func (w *worker) push(recs []*kgo.Record, hw int64) {
	var n int64
	for _, r := range recs {
		n += heldBytes(r)
	}
	w.p.hold(n)
	w.hw.Store(hw)
	w.next.Store(recs[len(recs)-1].Offset + 1)
	w.lagBase.CompareAndSwap(-1, recs[0].Offset)
	w.p.m.lag.WithLabelValues(w.label).Set(float64(max(hw-w.lagBase.Load(), 0)))
	w.mu.Lock()
	w.inbox = append(w.inbox, recs...)
	w.updatePauseLocked()
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// wantPauseLocked reports whether fetching should be paused: while the sink
// fails. The poll loop applies it between polls (see Processor.applyPauses);
// records the client buffered for a paused partition are dropped by the
// client and fetched again on resume. A worker that is merely behind is not
// paused (a resumed partition may wait a whole fetch long-poll): the poll
// loop waits for it instead (Processor.backlogged).
func (w *worker) wantPauseLocked() bool { return w.retry }

// backlogLocked reports whether the worker holds so many unprocessed records
// that the poll loop should wait before polling more. A failing worker does
// not count: its partition is paused, so its inbox cannot grow.
func (w *worker) backlogLocked() bool { return !w.retry && len(w.inbox) >= w.highWater() }

// updatePauseLocked wakes the poll loop when the wanted pause state differs
// from the applied one.
func (w *worker) updatePauseLocked() {
	if w.wantPauseLocked() != w.paused {
		w.p.wake()
	}
}

func (w *worker) setRetrying(on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.retry == on || on && w.ctx.Err() != nil { // a worker given up stays cleared (Processor.forget)
		return
	}
	w.retry = on
	if on {
		w.p.retrying.Add(1)
	} else {
		w.p.retrying.Add(-1)
	}
	w.updatePauseLocked()
}

// take swaps out the inbox.
func (w *worker) take() []*kgo.Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	recs := w.inbox
	w.inbox = w.spare[:0]
	w.spare = nil
	w.updatePauseLocked()
	select {
	case w.p.drained <- struct{}{}:
	default:
	}
	return recs
}

// finish asks the worker to process what it holds, write its block and
// commit, then exit.
func (w *worker) finish() { w.finishOnce.Do(func() { close(w.finishing) }) }

func (w *worker) run() {
	defer close(w.done)
	defer w.cancel()
	defer w.timer.Stop()
	// A block still with the committer when the worker stops (lost, timed
	// out or failed) is abandoned: the committer drops it, as w.ctx ended.
	defer w.due.Store(0)
	defer w.releaseAll()
	for {
		// An expired linger first: select picks among ready cases at
		// random, and a worker whose inbox never empties would otherwise
		// see its timer late, by a whole drain each time it loses.
		select {
		case <-w.timer.C:
			w.lingerDue = true
			if w.flushIfDue() != nil {
				return
			}
		default:
		}
		var result chan error
		if w.inflight != nil {
			result = w.result
		}
		select {
		case <-w.ctx.Done():
			return // lost or timed out: drop the buffers
		case err := <-result:
			if w.complete(err) != nil {
				return
			}
		case <-w.notify:
			if w.drain() != nil {
				return
			}
		case <-w.timer.C:
			w.lingerDue = true
			if w.flushIfDue() != nil {
				return
			}
		case <-w.finishing:
			if w.drain() != nil {
				return
			}
			if w.records > 0 && w.blk.LastOffset < w.minReach {
				// Writing now would commit a block shorter than the one a
				// crash may have left half-written; the next owner redoes it.
				w.p.log.Info("dropping a partial first block on revoke", "partition", w.id,
					"last_offset", w.blk.LastOffset, "must_reach", w.minReach)
				return
			}
			if w.records > 0 {
				if w.flush() != nil {
					return
				}
			}
			if w.await() != nil {
				return
			}
			w.commitSync()
			return
		}
	}
}

// drain processes the inbox.
func (w *worker) drain() error {
	recs := w.take()
	for i, rec := range recs {
		w.add(rec)
		recs[i] = nil
		if err := w.flushIfDue(); err != nil {
			return err
		}
	}
	w.mu.Lock()
	if w.spare == nil {
		w.spare = recs[:0]
	}
	w.mu.Unlock()
	if w.p.streamer != nil && w.p.overBudget() {
		w.sendPacket() // a partial packet: memory before part size
	}
	return nil
}

func (w *worker) flushIfDue() error {
	if w.records == 0 || w.blk.LastOffset < w.minReach {
		return nil
	}
	if w.records >= w.p.cfg.MaxRows || w.bytes >= w.p.cfg.MaxBytes {
		return w.flush()
	}
	if !w.lingerDue {
		return nil
	}
	// Linger bounds latency once the partition is caught up. While it is
	// behind, its records are late anyway and a block cut by time only
	// multiplies ClickHouse parts, so the block keeps filling, up to
	// lingerBehind times the linger.
	if w.behind() {
		if rest := lingerBehind*w.p.cfg.Linger - time.Since(w.blockStart); rest > 0 {
			if !w.deferred {
				w.deferred = true
				w.timer.Reset(rest)
				w.due.Store(time.Now().Add(rest).UnixNano())
			}
			return nil
		}
	}
	return w.flush()
}

// lingerBehind is how many lingers a block may last while its partition is
// behind.
const lingerBehind = 4

// behind reports whether more records lie in Kafka past the block, as of
// the last fetch, than lingerBehind blocks like this one would hold: a
// backlog worth stretching the block for, not the records in flight of a
// partition that keeps up, even slowly.
func (w *worker) behind() bool {
	return w.hw.Load()-(w.blk.LastOffset+1) > int64(lingerBehind*max(w.records, w.p.cfg.PacketRows))
}

// add puts one record into the block: a raw row and rollup deltas, or a DLQ
// entry for a poison record.
func (w *worker) add(rec *kgo.Record) {
	if w.records == 0 {
		w.blk.FirstOffset = rec.Offset
		w.blockStart = time.Now()
		due := w.p.blockDeadline(w.blockStart)
		w.due.Store(due.UnixNano())
		w.timer.Reset(due.Sub(w.blockStart))
	}
	w.blk.LastOffset = rec.Offset
	w.lastEpoch = rec.LeaderEpoch
	w.records++
	w.bytes += len(rec.Value)
	w.unsent += heldBytes(rec)
	if len(rec.Value) > schemas.MaxItemBytes {
		w.poison(rec, ReasonOversize, fmt.Errorf("item of %d bytes exceeds %d", len(rec.Value), schemas.MaxItemBytes))
		return
	}
	// Zero copy: the record value outlives the row (both live until the
	// row is sent), and rollup keys are cloned. The item itself is reused
	// (fill copies what it keeps).
	if err := w.dec.DecodeZeroCopy(rec.Value, &w.item); err != nil {
		w.poison(rec, classify(err), err)
		return
	}
	// "Now" for the limits is the record's timestamp (when it was
	// produced, by ingest or a producer): a block read again later must
	// get the same rows.
	ref := rec.Timestamp
	if ref.UnixMilli() <= 0 {
		ref = time.Now()
	}
	if err := w.p.cfg.Limits.Check(&w.item, ref); err != nil {
		w.poison(rec, ReasonOutOfRange, err)
		return
	}
	w.p.policy.Item(&w.item)
	w.fill(&w.item, rec)
	if w.p.streamer != nil && len(w.blk.Rows) >= w.p.cfg.PacketRows {
		w.sendPacket()
	}
}

// sendPacket sends the rows held on the processor's shared stream and
// drops them. Once a stream the block used broke, rows are dropped unsent:
// the committer reads the whole block again from Kafka.
func (w *worker) sendPacket() {
	rows := w.blk.Rows
	if w.streamErr == nil && len(rows) > 0 {
		ss, err := w.p.shares.send(w.id, w.log, rows)
		if ss != nil && (len(w.shared) == 0 || w.shared[len(w.shared)-1] != ss) {
			w.shared = append(w.shared, ss)
		}
		if err != nil {
			w.streamErr = err
			w.p.log.Debug("row stream failed; the block will be read again from Kafka", "partition", w.id,
				"first_offset", w.blk.FirstOffset, "err", err)
		}
	}
	releaseRows(rows)
	w.blk.Rows = rows[:0]
	w.release()
}

// releaseAll stops counting every byte the worker holds when it stops.
func (w *worker) releaseAll() {
	w.release()
	if f := w.inflight; f != nil {
		w.p.hold(-f.unsent)
		f.unsent = 0
	}
	w.mu.Lock()
	var n int64
	for _, r := range w.inbox {
		n += heldBytes(r)
	}
	w.inbox = w.inbox[:0]
	w.mu.Unlock()
	w.p.hold(-n)
}

// heldBytes is what a record counts against MemoryBudget from its poll
// until its row is sent: its value, and about as much again for the row
// built from it (log lines are rendered, redacted values copied).
func heldBytes(r *kgo.Record) int64 { return 2 * int64(len(r.Value)) }

// release stops counting the bytes of the records added since the last
// release: their rows were sent, or their block stored.
func (w *worker) release() {
	if w.unsent != 0 {
		w.p.hold(-w.unsent)
		w.unsent = 0
	}
}

func (w *worker) poison(rec *kgo.Record, reason string, err error) {
	d := dlqRecord(w.p.cfg.DLQTopic, rec, reason, err, w.p.policy, time.Now())
	w.dlq = append(w.dlq, dlqEntry{rec: d, reason: reason})
	w.p.logPoison(rec, reason, d)
}

// nextRow extends the block by one row, reusing a previous row's slices.
func (w *worker) nextRow() *sinks.RawRow {
	n := len(w.blk.Rows)
	if n < cap(w.blk.Rows) {
		w.blk.Rows = w.blk.Rows[:n+1]
	} else {
		w.blk.Rows = append(w.blk.Rows, sinks.RawRow{})
	}
	return &w.blk.Rows[n]
}

// sinksRawRowReuse returns an empty row holding r's slices, emptied.
func sinksRawRowReuse(r *sinks.RawRow) sinks.RawRow {
	return sinks.RawRow{
		HeaderNames: r.HeaderNames[:0], HeaderValues: r.HeaderValues[:0],
		LogLevels: r.LogLevels[:0], LogMessages: r.LogMessages[:0], LogTsMs: r.LogTsMs[:0],
		ExcNames: r.ExcNames[:0], ExcMessages: r.ExcMessages[:0], ExcStacks: r.ExcStacks[:0], ExcTsMs: r.ExcTsMs[:0],
	}
}

// flush hands the block to the committer, after the previous block is
// stored, and starts a new block. It returns an error only when the worker
// must stop (cancelled, or a schema error).
func (w *worker) flush() error {
	if w.p.streamer != nil {
		w.sendPacket()
	}
	w.blk.Rollups = w.acc.Flush(w.blk.Rollups[:0])
	tick := int64(0)
	if w.lingerDue {
		tick = w.due.Load()
	}
	w.due.Store(0)
	if err := w.await(); err != nil {
		return err
	}
	f := w.spareF
	if f == nil {
		f = &flight{}
	}
	w.spareF = nil
	// Swap buffers: f takes the block, the worker reuses f's old ones.
	f.blk, w.blk = w.blk, f.blk
	f.dlq, w.dlq = w.dlq, f.dlq
	f.records, f.rows, f.maxEventMs, f.lastEpoch = w.records, w.rows, w.maxEventMs, w.lastEpoch
	f.unsent, w.unsent = w.unsent, 0
	f.w, f.tick = w, tick
	f.shared, w.shared = w.shared, f.shared[:0]
	f.streamErr, f.rawDone = w.streamErr, w.p.streamer == nil
	w.streamErr = nil
	w.blk.Topic, w.blk.Partition = w.log, w.id
	w.blk.Reset()
	clear(w.dlq)
	w.dlq = w.dlq[:0]
	w.records, w.rows, w.bytes, w.maxEventMs = 0, 0, 0, 0
	w.minReach = -1
	w.lingerDue, w.deferred = false, false
	w.timer.Stop()
	w.inflight = f
	w.p.com.submit(f)
	return nil
}

// await waits for the block in flight, if any, and completes it. It gives
// up when the worker is cancelled: the committer drops the block.
func (w *worker) await() error {
	if w.inflight == nil {
		return nil
	}
	select {
	case err := <-w.result:
		return w.complete(err)
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}

// complete finishes the block in flight once its writer reported: metrics
// and the Kafka commit on success.
func (w *worker) complete(err error) error {
	f := w.inflight
	w.inflight = nil
	w.p.hold(-f.unsent)
	f.unsent = 0
	if err != nil {
		return err
	}
	m := w.p.m
	m.records.Add(float64(f.records))
	m.rows.Add(float64(f.rows))
	m.blocks.Inc()
	if f.maxEventMs > 0 {
		m.freshness.Set(time.Since(time.UnixMilli(f.maxEventMs)).Seconds())
	}
	next := f.blk.LastOffset + 1
	w.lagBase.Store(next)
	w.wroteNext = next
	w.wroteEpoch = f.lastEpoch
	m.lag.WithLabelValues(w.label).Set(float64(max(w.hw.Load()-next, 0)))
	w.commitAsync(next, f.lastEpoch)
	releaseBlock(&f.blk) // f.shared was emptied by storeRaw
	w.spareF = f
	return nil
}

// releaseBlock drops a written block's string references, keeping its
// buffers for reuse. Rows alias the decompressed Kafka batches (zero-copy
// decode), and reused slices keep whatever lies past their length: without
// this, stale entries of spare rows and nested slices pinned batches long
// written, and the processor's heap grew with the backlog it read.
func releaseBlock(b *sinks.Block) {
	releaseRows(b.Rows)
	clear(b.Rollups) // map keys updated on assignment alias records too
	b.Reset()
}

// releaseRows empties rows for reuse, dropping their string references.
func releaseRows(rows []sinks.RawRow) {
	for i := range rows {
		r := &rows[i]
		clear(r.HeaderNames)
		clear(r.HeaderValues)
		clear(r.LogLevels)
		clear(r.LogMessages)
		clear(r.ExcNames)
		clear(r.ExcMessages)
		clear(r.ExcStacks)
		*r = sinksRawRowReuse(r)
	}
}

// sendDLQ produces the block's poison records not yet acknowledged, in one
// batch, and waits for the acknowledgements.
func (w *worker) sendDLQ(f *flight) error {
	var firstErr error
	for pass := 0; pass < 2; pass++ {
		idx := make(map[*kgo.Record]int) // results come in completion order
		var recs []*kgo.Record
		for i := range f.dlq {
			if !f.dlq[i].acked {
				rec := *f.dlq[i].rec // a fresh record per attempt: kgo owns it until acknowledged
				idx[&rec] = i
				recs = append(recs, &rec)
			}
		}
		if len(recs) == 0 {
			return nil
		}
		tooLarge := false
		for _, r := range w.p.cl.ProduceSync(w.ctx, recs...) {
			e := &f.dlq[idx[r.Record]]
			switch {
			case r.Err == nil:
				e.acked = true
				w.p.m.dlq.WithLabelValues(e.reason).Inc()
			case errors.Is(r.Err, kerr.MessageTooLarge) && len(e.rec.Value) > schemas.MaxItemBytes:
				// Keep the coordinates and the reason; the value is lost.
				e.rec.Headers = append(e.rec.Headers, kgo.RecordHeader{Key: DLQHeaderValueDropped, Value: strconv.AppendInt(nil, int64(len(e.rec.Value)), 10)})
				e.rec.Value = nil
				tooLarge = true
			case errors.Is(r.Err, kerr.MessageTooLarge):
				tooLarge = true // failed with an oversize record of its batch; retry alone
			case firstErr == nil:
				firstErr = fmt.Errorf("produce to DLQ topic %s: %w", w.p.cfg.DLQTopic, r.Err)
			}
		}
		if !tooLarge {
			break
		}
	}
	return firstErr
}

func (w *worker) commitAsync(next int64, epoch int32) {
	w.p.cl.CommitOffsets(w.ctx, w.offsets(next, epoch), func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err == nil {
			err = commitErr(resp)
		}
		if err != nil {
			w.p.log.Debug("kafka commit failed (lag metric only)", "partition", w.id, "err", err)
		}
	})
}

// commitSync commits the end of the last written block before a revoke or
// stop returns.
func (w *worker) commitSync() {
	next := w.wroteNext
	if next < 0 {
		return // nothing written: the committed offset stays where it was
	}
	w.p.cl.CommitOffsetsSync(w.ctx, w.offsets(next, w.wroteEpoch), func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err == nil {
			err = commitErr(resp)
		}
		if err != nil {
			w.p.log.Warn("kafka commit on revoke failed (lag metric only)", "partition", w.id, "err", err)
		}
	})
}

func (w *worker) offsets(next int64, epoch int32) map[string]map[int32]kgo.EpochOffset {
	return map[string]map[int32]kgo.EpochOffset{w.p.cfg.Topic: {w.id: {Epoch: epoch, Offset: next}}}
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
