package processor

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/processor/rollup"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
)

// worker owns one partition: it decodes the records the poll loop hands it
// and builds the partition's blocks. It cuts a block and hands it to the
// committer, which stores it and hands it back; the worker does not touch a
// block in between.
type worker struct {
	*env
	com    *committer
	id     int32
	key    uint64 // the worker's key in env.clock
	log    string // the log name blocks are stored under (sinks.LogName)
	label  string
	ctx    context.Context // cancelled on loss or when a final flush times out
	cancel context.CancelFunc
	done   chan struct{}

	finishOnce sync.Once
	finishing  chan struct{}

	notify chan struct{}
	mu     sync.Mutex // guards inbox and paused
	inbox  []*kgo.Record
	paused bool // as applied by the poll loop

	hw      atomic.Int64 // partition high watermark from the last fetch
	next    atomic.Int64 // offset after the last record pushed, or -1
	lagBase atomic.Int64 // end of the last written block (next offset), or the first offset seen

	// Owned by run.
	blk        sinks.Block
	acc        *rollup.Accumulator
	item       schemas.TraceItem
	dec        schemas.Decoder
	dlq        []dlqEntry
	records    int
	rows       int // raw rows of the block, sent or held
	bytes      int
	unsent     int64 // record bytes added since the rows were last sent (env.budget)
	maxEventMs int64
	lastEpoch  int32
	minReach   int64 // the first block must reach this offset (Watermark.MaxRawOffset)
	due        int64 // when the block being filled is cut by time (unix ns), or 0
	lingerDue  bool
	deferred   bool // the linger cut is put off while the partition is behind
	timer      *time.Timer
	pulled     <-chan struct{} // closed when the later cut the block waits for is brought forward
	spare      []*kgo.Record

	// Streaming: blk.Rows holds at most a packet; full packets go out on
	// the committer's shared streams, listed in streams. streamErr is the
	// error that broke one: the block's remaining rows are dropped and the
	// committer reads the block again from Kafka.
	streams   []*sharedStream
	streamErr error

	// One block may be with the committer while the next one fills:
	// inflight, whose result comes on result; spareCut holds the buffers of
	// the block stored before it, for reuse.
	inflight *cut
	spareCut *cut
	result   chan error
}

// cut is a block a worker has cut, with what the committer needs to store
// it. It is not changed until the committer sends the result.
type cut struct {
	ctx        context.Context // the worker's: done when the partition is given up
	key        uint64          // the worker's key in env.clock
	part       int32
	log        string
	tick       int64  // the cut it was due at (unix ns), or 0
	why        string // what cut it: cutRows, cutBytes, cutLinger, cutLater or cutRevoke
	blk        sinks.Block
	dlq        []dlqEntry
	records    int
	rows       int
	maxEventMs int64
	lastEpoch  int32
	held       int64 // record bytes the block's rows hold (not streamed)
	// Streaming: the shared streams that carried the block's rows, and the
	// error that broke one while the block filled.
	streams   []*sharedStream
	streamErr error
	result    chan<- error
}

type dlqEntry struct {
	rec    *kgo.Record
	reason string
}

func newWorker(e *env, com *committer, id int32, log string, wm sinks.Watermark) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{
		env: e, com: com, id: id, key: e.clock.register(), log: log, label: strconv.Itoa(int(id)),
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
	return w
}

// highWater is how many unprocessed records make the poll loop wait.
func (w *worker) highWater() int { return 2 * w.cfg.MaxPollRecords }

// push hands polled records to the worker; it never blocks.
func (w *worker) push(recs []*kgo.Record, hw int64) {
	var n int64
	for _, r := range recs {
		n += heldBytes(r)
	}
	w.budget.hold(n)
	w.hw.Store(hw)
	w.next.Store(recs[len(recs)-1].Offset + 1)
	w.lagBase.CompareAndSwap(-1, recs[0].Offset)
	w.m.lag.WithLabelValues(w.label).Set(float64(max(hw-w.lagBase.Load(), 0)))
	w.mu.Lock()
	w.inbox = append(w.inbox, recs...)
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// wantPause reports whether fetching should be paused: while the sink
// refuses the partition's blocks. The poll loop applies it between polls
// (see Processor.applyPauses); records the client buffered for a paused
// partition are dropped by the client and fetched again on resume. A worker
// that is merely behind is not paused (a resumed partition may wait a whole
// fetch long-poll): the poll loop waits for it instead (Processor.backlogged).
func (w *worker) wantPause() bool { return w.failing.has(w.id) }

// backlogged reports whether the worker holds so many unprocessed records
// that the poll loop should wait before polling more. A failing worker does
// not count: its partition is paused, so its inbox cannot grow.
func (w *worker) backlogged() bool {
	if w.wantPause() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.inbox) >= w.highWater()
}

// take swaps out the inbox.
func (w *worker) take() []*kgo.Record {
	w.mu.Lock()
	recs := w.inbox
	w.inbox = w.spare[:0]
	w.spare = nil
	w.mu.Unlock()
	w.loop.drain()
	return recs
}

// finish asks the worker to process what it holds and have its block
// stored, then exit.
func (w *worker) finish() { w.finishOnce.Do(func() { close(w.finishing) }) }

func (w *worker) run() {
	defer close(w.done)
	defer w.cancel()
	defer w.timer.Stop()
	// A block still with the committer when the worker stops (lost, timed
	// out or failed) is abandoned: the committer drops it, as w.ctx ended.
	defer w.clock.setDue(w.key, 0)
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
		case <-w.pulled:
			w.pulledIn(time.Now().UnixNano())
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
				w.env.log.Info("dropping a partial first block on revoke", "partition", w.id,
					"last_offset", w.blk.LastOffset, "must_reach", w.minReach)
				return
			}
			if w.records > 0 {
				if w.flush(cutRevoke, 0) != nil {
					return
				}
			}
			_ = w.await() // exiting either way
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
	if w.stream && w.budget.over() {
		w.sendPacket() // a partial packet: memory before part size
	}
	// A block put off to a later cut that has reached the end of its
	// partition: once no partition put off as behind is still behind, the
	// wait is over (the end of a catch-up would otherwise wait up to
	// lingerBehind-1 more lingers). Where the partition ends in
	// transaction markers, the records never reach the high watermark and
	// the block waits as before.
	if w.deferred && w.pulled != nil && w.blk.LastOffset+1 >= w.hw.Load() {
		if at := w.clock.caughtUp(w.key, time.Now().UnixNano()); at != 0 {
			w.pulledIn(at)
			return w.flushIfDue()
		}
	}
	return nil
}

func (w *worker) flushIfDue() error {
	if w.records == 0 || w.blk.LastOffset < w.minReach {
		return nil
	}
	if w.records >= w.cfg.MaxRows || w.bytes >= w.cfg.MaxBytes {
		why := cutRows
		if w.records < w.cfg.MaxRows {
			why = cutBytes
		}
		// The blocks put off to a later cut are cut now too, and committed
		// with this one.
		return w.flush(why, w.clock.pullIn(time.Now().UnixNano()))
	}
	if !w.lingerDue && w.pulled != nil {
		// Checked per record: a worker draining a long inbox returns to its
		// select only at the end. (Its linger is not: a block cut at the
		// end of a drain holds the records already polled.)
		select {
		case <-w.pulled:
			w.pulledIn(time.Now().UnixNano())
		default:
		}
	}
	if !w.lingerDue {
		return nil
	}
	// Linger bounds latency once the processor is caught up. While a
	// partition is behind, its records are late anyway and a block cut by
	// time only multiplies ClickHouse parts, so its block keeps filling, up
	// to lingerBehind times the linger, and the blocks of the other
	// partitions wait for the same cut (cutClock.putOff).
	if !w.deferred {
		w.deferred = true
		if at, pull := w.clock.putOff(w.key, w.due, w.behind()); at > time.Now().UnixNano() {
			w.lingerDue = false
			w.timer.Reset(time.Until(time.Unix(0, at)))
			w.due, w.pulled = at, pull
			return nil
		}
		return w.flush(cutLinger, w.due)
	}
	return w.flush(cutLater, w.due)
}

// pulledIn makes the block due at at: the later cut it waited for was
// brought forward (cutClock.pullIn). The channel is dropped, as a closed
// one would keep the worker's select busy.
func (w *worker) pulledIn(at int64) {
	w.pulled = nil
	w.lingerDue, w.due = true, at
}

// setDue records when the block being filled is cut by time (0: not).
func (w *worker) setDue(at int64) {
	w.due = at
	w.clock.setDue(w.key, at)
}

// What cut a block (logged per commit at debug level).
const (
	cutRows   = "rows"   // Config.MaxRows
	cutBytes  = "bytes"  // Config.MaxBytes
	cutLinger = "linger" // the linger, or the shared cut of all partitions
	cutLater  = "later"  // a cut put off while a partition was behind
	cutRevoke = "revoke" // the partition was revoked
)

// lingerBehind is how many lingers a block may last while its partition is
// behind.
const lingerBehind = 4

// behind reports whether more records lie in Kafka past the block, as of
// the last fetch, than lingerBehind blocks like this one would hold: a
// backlog worth stretching the block for, not the records in flight of a
// partition that keeps up, even slowly.
func (w *worker) behind() bool {
	return w.hw.Load()-(w.blk.LastOffset+1) > int64(lingerBehind*max(w.records, w.cfg.PacketRows))
}

// add puts one record into the block: a raw row and rollup deltas, or a DLQ
// entry for a poison record.
func (w *worker) add(rec *kgo.Record) {
	if w.records == 0 {
		w.blk.FirstOffset = rec.Offset
		start := time.Now()
		due := w.clock.deadline(start)
		w.setDue(due.UnixNano())
		w.timer.Reset(due.Sub(start))
	}
	w.blk.LastOffset = rec.Offset
	w.lastEpoch = rec.LeaderEpoch
	w.records++
	w.bytes += len(rec.Value)
	w.unsent += heldBytes(rec)
	// The item is reused: fillRow copies what it keeps.
	if reason, err := w.decode(&w.dec, &w.item, rec); err != nil {
		d := dlqRecord(w.cfg.DLQTopic, rec, reason, err, w.policy, time.Now())
		w.dlq = append(w.dlq, dlqEntry{rec: d, reason: reason})
		w.poisons.add(rec, reason, d)
		return
	}
	r := w.nextRow()
	w.fillRow(r, &w.item, rec)
	w.acc.Add(r)
	w.rows++
	w.maxEventMs = max(w.maxEventMs, r.EventTsMs)
	if w.stream && len(w.blk.Rows) >= w.cfg.PacketRows {
		w.sendPacket()
	}
}

// sendPacket sends the rows held on the committer's shared stream and
// drops them. Once a stream the block used broke, rows are dropped unsent:
// the committer reads the whole block again from Kafka.
func (w *worker) sendPacket() {
	rows := w.blk.Rows
	if w.streamErr == nil && len(rows) > 0 {
		ss, err := w.com.send(w.id, w.log, rows)
		if ss != nil && (len(w.streams) == 0 || w.streams[len(w.streams)-1] != ss) {
			w.streams = append(w.streams, ss)
		}
		if err != nil {
			w.streamErr = err
			w.env.log.Debug("row stream failed; the block will be read again from Kafka", "partition", w.id,
				"first_offset", w.blk.FirstOffset, "err", err)
		}
	}
	resetRows(rows)
	w.blk.Rows = rows[:0]
	w.release()
}

// releaseAll stops counting the bytes the worker holds when it stops (a
// block with the committer is released by the committer).
func (w *worker) releaseAll() {
	w.release()
	w.mu.Lock()
	var n int64
	for _, r := range w.inbox {
		n += heldBytes(r)
	}
	w.inbox = w.inbox[:0]
	w.mu.Unlock()
	w.budget.hold(-n)
}

// heldBytes is what a record counts against MemoryBudget from its poll
// until its row is sent: its value, and about as much again for the row
// built from it (log lines are rendered, redacted values copied).
func heldBytes(r *kgo.Record) int64 { return 2 * int64(len(r.Value)) }

// release stops counting the bytes of the records added since the last
// release: their rows were sent.
func (w *worker) release() {
	if w.unsent != 0 {
		w.budget.hold(-w.unsent)
		w.unsent = 0
	}
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

// flush cuts the block, due at tick (0: cut by size or on revoke, with no
// other block), and hands it to the committer, after the block before it
// is stored, and starts a new block. It returns an error only when the
// worker must stop (cancelled, or a schema error).
func (w *worker) flush(why string, tick int64) error {
	if w.stream {
		w.sendPacket()
	}
	w.blk.Rollups = w.acc.Flush(w.blk.Rollups[:0])
	w.setDue(0)
	w.pulled = nil
	if err := w.await(); err != nil {
		return err
	}
	c := w.spareCut
	if c == nil {
		c = &cut{}
	}
	w.spareCut = nil
	// Swap buffers: c takes the block, the worker reuses c's old ones.
	c.blk, w.blk = w.blk, c.blk
	c.dlq, w.dlq = w.dlq, c.dlq
	c.streams, w.streams = w.streams, c.streams[:0]
	c.ctx, c.key, c.part, c.log, c.tick, c.why, c.result = w.ctx, w.key, w.id, w.log, tick, why, w.result
	c.records, c.rows, c.maxEventMs, c.lastEpoch = w.records, w.rows, w.maxEventMs, w.lastEpoch
	c.held, w.unsent = w.unsent, 0
	c.streamErr, w.streamErr = w.streamErr, nil
	w.blk.Topic, w.blk.Partition = w.log, w.id
	w.blk.Reset()
	w.records, w.rows, w.bytes, w.maxEventMs = 0, 0, 0, 0
	w.minReach = -1
	w.lingerDue, w.deferred = false, false
	w.timer.Stop()
	w.inflight = c
	w.com.submit(c)
	return nil
}

// await waits for the block with the committer, if any, and completes it.
// It gives up when the worker is cancelled: the committer drops the block.
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

// complete takes back the block the committer reported on.
func (w *worker) complete(err error) error {
	c := w.inflight
	w.inflight = nil
	if err != nil {
		return err
	}
	next := c.blk.LastOffset + 1
	w.lagBase.Store(next)
	w.m.lag.WithLabelValues(w.label).Set(float64(max(w.hw.Load()-next, 0)))
	releaseBlock(&c.blk)
	clear(c.dlq)
	c.dlq = c.dlq[:0]
	clear(c.streams)
	c.streams = c.streams[:0]
	c.ctx, c.result, c.streamErr = nil, nil, nil
	w.spareCut = c
	return nil
}

// releaseBlock drops a stored block's string references, keeping its
// buffers for reuse. Rows alias the decompressed Kafka batches (zero-copy
// decode), and reused slices keep whatever lies past their length: without
// this, stale entries of spare rows and nested slices pinned batches long
// written, and the processor's heap grew with the backlog it read.
func releaseBlock(b *sinks.Block) {
	resetRows(b.Rows)
	clear(b.Rollups)
	b.Reset()
}

// resetRows empties rows for reuse, dropping their string references.
func resetRows(rows []sinks.RawRow) {
	for i := range rows {
		rows[i].Reset()
	}
}
