package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taillight/taillight/sinks"
)

// Group commit. ClickHouse pays per part written and merged, not per row:
// with one INSERT per partition per linger, a processor with several
// partitions made the server spend a core on small parts. So every
// partition's raw rows share one open INSERT per sink stream group (a
// sharedStream), blocks of all partitions are cut together (Processor.cut),
// and one committer writes the cut blocks with one rollup INSERT
// (sinks.GroupWriter): a processor makes two parts per linger, whatever
// its partition count.

// sharedStream is one raw-row stream carrying the rows of every partition
// of a stream group until the committer closes it.
type sharedStream struct {
	st   sinks.RawStream
	done chan struct{} // closed once closed or broken; err is final then
	err  error
}

// shares holds the open stream of each stream group.
type shares struct {
	p *Processor
	// sem (capacity 1) guards cur and every Send. A channel, not a mutex:
	// Send may wait for the network, and a goroutine blocked on a channel
	// lets a synctest clock advance where one on a mutex would not.
	sem chan struct{}
	cur map[streamKey]*sharedStream
}

// streamKey names a shared stream: a sink stream group and the log name its
// rows are stored under.
type streamKey struct {
	group int
	log   string
}

func (s *shares) lock()   { s.sem <- struct{}{} }
func (s *shares) unlock() { <-s.sem }

// send sends rows of partition on its group's open stream, opening one
// first. It returns the stream used (nil when none could be opened) and the
// error that broke it; a broken stream is done and no longer current.
func (s *shares) send(partition int32, log string, rows []sinks.RawRow) (*sharedStream, error) {
	g := streamKey{s.p.streamer.StreamGroup(partition), log}
	s.lock()
	defer s.unlock()
	ss := s.cur[g]
	if ss == nil {
		// The processor's context, not the partition's: the stream carries
		// other partitions' rows too.
		st, err := s.p.streamer.Stream(s.p.bg, log, partition)
		if err != nil {
			return nil, err
		}
		ss = &sharedStream{st: st, done: make(chan struct{})}
		s.cur[g] = ss
	}
	if err := ss.st.Send(rows); err != nil {
		ss.st.Abort()
		ss.err = err
		close(ss.done)
		delete(s.cur, g)
		return ss, err
	}
	return ss, nil
}

// close ends the open streams that the flights used (all, when fs is nil),
// so their rows are stored. Only the committer calls it.
func (s *shares) close(fs []*flight) {
	var open []*sharedStream
	s.lock()
	for g, ss := range s.cur {
		if fs == nil || usedBy(ss, fs) {
			open = append(open, ss)
			delete(s.cur, g)
		}
	}
	s.unlock()
	for _, ss := range open {
		ss.err = ss.st.Close()
		close(ss.done)
	}
}

// abort abandons the open streams (on stop: no block is left to commit
// their rows).
func (s *shares) abort() {
	s.lock()
	defer s.unlock()
	for g, ss := range s.cur {
		ss.st.Abort()
		ss.err = errors.New("stream abandoned on stop")
		close(ss.done)
		delete(s.cur, g)
	}
}

func usedBy(ss *sharedStream, fs []*flight) bool {
	for _, f := range fs {
		for _, u := range f.shared {
			if u == ss {
				return true
			}
		}
	}
	return false
}

// committer writes the blocks workers cut, several partitions' at once.
// Each worker has at most one flight with it: a worker waits for its block
// to be stored before it hands over the next.
type committer struct {
	p      *Processor
	mu     sync.Mutex
	queue  []*flight
	notify chan struct{}
	done   chan struct{}
	blocks []*sinks.Block
	// since is when the batch being committed was taken (unix ns), or 0:
	// Ready reports writes stuck longer than StuckAfter.
	since atomic.Int64
}

func newCommitter(p *Processor) *committer {
	return &committer{p: p, notify: make(chan struct{}, 1), done: make(chan struct{})}
}

// submit hands a cut block to the committer; the result goes to the
// worker's result channel.
func (c *committer) submit(f *flight) {
	c.mu.Lock()
	c.queue = append(c.queue, f)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// takeAll returns the queued flights, appended to batch.
func (c *committer) takeAll(batch []*flight) []*flight {
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
	return min(max(2*c.p.cfg.Linger, time.Second), 30*time.Second)
}

// gatherMax bounds how long a batch waits for the blocks of other
// partitions due at the same cut.
func (c *committer) gatherMax() time.Duration { return c.p.cfg.Linger / 4 }

// run commits batches until the processor's context ends.
func (c *committer) run() {
	defer close(c.done)
	idle := time.NewTimer(c.idleClose())
	defer idle.Stop()
	var batch []*flight
	for {
		batch = c.takeAll(batch[:0])
		if len(batch) == 0 {
			idle.Reset(c.idleClose())
			select {
			case <-c.p.bg.Done():
				c.p.shares.abort()
				for _, f := range c.takeAll(nil) {
					f.w.result <- c.p.bg.Err()
				}
				return
			case <-c.notify:
			case <-idle.C:
				c.p.shares.close(nil)
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
func (c *committer) gather(batch []*flight) []*flight {
	var timer *time.Timer
	for {
		tick := int64(0)
		for _, f := range batch {
			tick = max(tick, f.tick)
		}
		if tick == 0 || !c.due(batch, tick) {
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
		case <-c.p.bg.Done():
			return batch
		}
		batch = c.takeAll(batch)
	}
	return batch
}

// due reports whether a worker without a block in batch has one due at
// tick or before.
func (c *committer) due(batch []*flight, tick int64) bool {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
next:
	for _, w := range c.p.parts {
		for _, f := range batch {
			if f.w == w {
				continue next
			}
		}
		if d := w.due.Load(); d != 0 && d <= tick {
			return true
		}
	}
	return false
}

// commit stores a batch: raw rows (closing the shared streams its blocks
// used, reading broken ones again from Kafka), DLQ records, then every
// block's rollups at once. Transient failures are retried with backoff,
// the partitions paused meanwhile; blocks cut meanwhile join the batch;
// blocks of partitions given up are dropped from it. Every flight's worker
// gets the result.
func (c *committer) commit(batch []*flight) {
	p := c.p
	c.since.Store(time.Now().UnixNano())
	defer c.since.Store(0)
	backoff := p.cfg.RetryMin
	attempts := 0
	var err error
	for {
		batch = c.dropCancelled(batch)
		if len(batch) == 0 {
			return
		}
		if err = c.attempt(batch); err == nil || p.bg.Err() != nil {
			break
		}
		if c.cancelled(batch) {
			continue // a partition given up broke the attempt: go on without it
		}
		if errors.Is(err, sinks.ErrSchema) {
			err = fmt.Errorf("write blocks of partitions %v: %w", partitions(batch), err)
			p.fail(err)
			break
		}
		attempts++
		p.m.retries.Inc()
		if attempts == 1 {
			p.log.Warn("block write failed; retrying with backoff, partitions paused",
				"partitions", partitions(batch), "err", err)
		}
		for _, f := range batch {
			f.w.setRetrying(true)
		}
		if sleep(p.bg, backoff) != nil {
			err = p.bg.Err()
			break
		}
		backoff = min(2*backoff, p.cfg.RetryMax)
		n := len(batch)
		batch = c.takeAll(batch)
		for _, f := range batch[n:] {
			f.w.setRetrying(true)
		}
	}
	if attempts > 0 {
		if err == nil {
			p.log.Info("block write succeeded again; partitions resumed", "partitions", partitions(batch), "failed_attempts", attempts)
		}
		for _, f := range batch {
			f.w.setRetrying(false)
		}
	}
	for _, f := range batch {
		f.w.result <- err
	}
}

// attempt stores batch once.
func (c *committer) attempt(batch []*flight) error {
	p := c.p
	if p.streamer != nil {
		p.shares.close(batch)
	}
	for _, f := range batch {
		if err := f.w.storeRaw(f); err != nil {
			return err
		}
	}
	for _, f := range batch {
		if err := f.w.sendDLQ(f); err != nil {
			return err
		}
	}
	c.blocks = c.blocks[:0]
	for _, f := range batch {
		c.blocks = append(c.blocks, &f.blk)
	}
	defer clear(c.blocks)
	// Cancelled when a partition of the batch is given up: its block must
	// not be written any more (the attempt is made again without it).
	ctx, cancel := context.WithCancel(p.bg)
	defer cancel()
	for _, f := range batch {
		defer context.AfterFunc(f.w.ctx, cancel)()
	}
	start := time.Now()
	var err error
	if gw, ok := p.sink.(sinks.GroupWriter); ok {
		err = gw.WriteGroup(ctx, c.blocks)
	} else {
		for _, b := range c.blocks {
			if err = p.sink.Write(ctx, b); err != nil {
				break
			}
		}
	}
	if err == nil {
		p.m.flush.Observe(time.Since(start).Seconds())
		p.m.commitBlocks.Observe(float64(len(batch)))
	}
	return err
}

// dropCancelled removes the flights of partitions given up (lost, or out
// of time on revoke), telling their workers.
func (c *committer) dropCancelled(batch []*flight) []*flight {
	kept := batch[:0]
	for _, f := range batch {
		if err := f.w.ctx.Err(); err != nil {
			f.w.setRetrying(false)
			f.w.result <- err
			continue
		}
		kept = append(kept, f)
	}
	clear(batch[len(kept):])
	return kept
}

func (c *committer) cancelled(batch []*flight) bool {
	for _, f := range batch {
		if f.w.ctx.Err() != nil {
			return true
		}
	}
	return false
}

func partitions(batch []*flight) []int32 {
	ps := make([]int32, len(batch))
	for i, f := range batch {
		ps[i] = f.w.id
	}
	return ps
}
