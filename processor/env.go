package processor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/processor/redact"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
)

// env is what the processor, its partition workers and its committer share:
// settings, metrics, the redaction policy and the few pieces of state they
// coordinate through. The three hold it; none of them points at another
// that owns it.
type env struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics
	policy *redact.Policy
	router *redact.Router
	stream bool // raw rows are streamed to the sink while their block fills (Config.NoStream off)

	budget  budget
	clock   *cutClock
	failing failing
	poisons poisonLog
	loop    loopSignal
}

func newEnv(cfg Config, log *slog.Logger, m *metrics, policy *redact.Policy, router *redact.Router) *env {
	e := &env{cfg: cfg, log: log, m: m, policy: policy, router: router, stream: !cfg.NoStream}
	e.loop.drained = make(chan struct{}, 1)
	e.budget = budget{limit: cfg.MemoryBudget, gauge: m.held, loop: &e.loop}
	e.clock = newCutClock(cfg.Linger)
	e.failing = failing{parts: make(map[int32]bool), loop: &e.loop}
	e.poisons = poisonLog{log: log, topic: cfg.DLQTopic}
	return e
}

// decode decodes rec into item, checks its values and redacts it, exactly
// as every time the record is read: it returns the DLQ reason and cause of
// a poison record, or "" and nil.
func (e *env) decode(dec *schemas.Decoder, item *schemas.TraceItem, rec *kgo.Record) (reason string, err error) {
	if len(rec.Value) > schemas.MaxItemBytes {
		return ReasonOversize, fmt.Errorf("item of %d bytes exceeds %d", len(rec.Value), schemas.MaxItemBytes)
	}
	// Zero copy: the record value outlives the row (both live until the
	// row is sent), and rollup keys are cloned.
	if err := dec.DecodeZeroCopy(rec.Value, item); err != nil {
		return classify(err), err
	}
	// "Now" for the limits is the record's timestamp (when it was
	// produced, by ingest or a producer): a block read again later must
	// get the same rows.
	ref := rec.Timestamp
	if ref.UnixMilli() <= 0 {
		ref = time.Now()
	}
	if err := e.cfg.Limits.Check(item, ref); err != nil {
		return ReasonOutOfRange, err
	}
	e.policy.Item(item)
	return "", nil
}

// fillRow flattens a redacted item into r, reusing r's slices. It depends
// on t and rec alone: a block read again from Kafka gets the same rows.
func (e *env) fillRow(r *sinks.RawRow, t *schemas.TraceItem, rec *kgo.Record) {
	FillRow(r, t, e.router, rec.Partition, rec.Offset, rec.Timestamp.UnixMilli())
}

// loopSignal wakes the poll loop: drained when it may poll again (a worker
// took its inbox, bytes were released), wake when pauses are to change.
type loopSignal struct {
	drained chan struct{}

	mu    sync.Mutex
	abort context.CancelFunc // cancels the poll in progress
	woken bool
}

func (l *loopSignal) drain() {
	select {
	case l.drained <- struct{}{}:
	default:
	}
}

// wake makes the poll in progress return (or the next one, when none is),
// so the loop applies pause changes.
func (l *loopSignal) wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.abort != nil {
		l.abort()
	}
	l.woken = true
}

// poll registers the cancel function of the poll about to start.
func (l *loopSignal) poll(cancel context.CancelFunc) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.abort = cancel
	if l.woken {
		cancel()
		l.woken = false
	}
}

// budget counts the record bytes polled and not yet sent to the sink
// against Config.MemoryBudget.
type budget struct {
	limit int64
	held  atomic.Int64
	peak  atomic.Int64
	gauge prometheus.Gauge
	loop  *loopSignal
}

// hold counts n bytes as held (negative: released); a release tells a poll
// loop waiting on the budget.
func (b *budget) hold(n int64) {
	v := b.held.Add(n)
	b.gauge.Set(float64(v))
	if n < 0 {
		b.loop.drain()
		return
	}
	for {
		peak := b.peak.Load()
		if v <= peak || b.peak.CompareAndSwap(peak, v) {
			return
		}
	}
}

// over reports whether the bytes held reach the budget: polling waits, and
// workers send their rows early.
func (b *budget) over() bool { return b.held.Load() >= b.limit }

// cutClock times the cuts, so that the blocks of all partitions are cut,
// and committed, together.
type cutClock struct {
	linger time.Duration
	cut    atomic.Int64 // when the blocks being filled are cut (unix ns)

	mu    sync.Mutex
	due   map[uint64]int64 // worker → when its block is due (unix ns)
	next  uint64
	later int64           // when the blocks put off while behind are cut (unix ns)
	pull  chan struct{}   // closed when that cut is brought forward (pullIn)
	held  map[uint64]bool // the workers whose blocks wait for it (each has a due time): true while put off as behind
}

func newCutClock(linger time.Duration) *cutClock {
	return &cutClock{linger: linger, due: make(map[uint64]int64), held: make(map[uint64]bool)}
}

// deadline returns when a block started at now is cut: one Linger later at
// the latest, earlier to be cut with the blocks of other partitions (a
// block is cheap, a commit is not).
func (c *cutClock) deadline(now time.Time) time.Time {
	own := now.Add(c.linger).UnixNano()
	for {
		cut := c.cut.Load()
		if cut > now.UnixNano() {
			return time.Unix(0, min(cut, own))
		}
		if c.cut.CompareAndSwap(cut, own) {
			return time.Unix(0, own)
		}
	}
}

// putOff returns when the block of worker key, due at tick, is cut
// instead, or 0 to cut it at tick, and a channel closed if that cut is
// brought forward. A block whose partition is behind is put off by
// lingerBehind-1 lingers (so it lasts at most lingerBehind lingers, since
// tick is at most one linger after its start), and cut with the other
// blocks put off at that tick. A block of a partition that keeps up joins
// such a cut when there is one: while a processor catches up on some
// partitions, it still commits the blocks of all of them together.
func (c *cutClock) putOff(key uint64, tick int64, behind bool) (int64, <-chan struct{}) {
	own := tick + int64(lingerBehind-1)*int64(c.linger)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.later <= tick {
		if !behind {
			return 0, nil
		}
		c.later, c.pull = own, make(chan struct{})
		clear(c.held)
	}
	at := min(c.later, own)
	c.due[key] = at
	c.held[key] = c.held[key] || behind
	return at, c.pull
}

// caughtUp reports that the block of worker key, put off to the pending
// later cut, has reached the end of its partition as of the last fetch.
// When no block put off because its partition was behind is still behind,
// nothing is worth waiting for: the cut is brought forward to now (as by
// pullIn), and caughtUp returns now; else 0. Every block it cuts is past
// its own linger, so blocks are never cut more often than the linger
// does.
func (c *cutClock) caughtUp(key uint64, now int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.held[key]; ok {
		c.held[key] = false
	}
	for _, behind := range c.held {
		if behind {
			return 0
		}
	}
	return c.pullInLocked(now)
}

// pullIn brings a pending later cut forward to now: a block was cut by
// size, or the partitions that were behind have caught up. The blocks put
// off to it are cut now too, and committed together rather than by
// themselves a moment later. It returns the tick the blocks are now due
// at, or 0 when none was pending.
func (c *cutClock) pullIn(now int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pullInLocked(now)
}

func (c *cutClock) pullInLocked(now int64) int64 {
	if c.later <= now || c.pull == nil {
		return 0 // none pending, or already brought forward (the wall clock stepped back)
	}
	for key := range c.held {
		c.due[key] = now // the committer's gather waits for them
	}
	clear(c.held)
	c.later = now
	close(c.pull)
	c.pull = nil
	return now
}

// register returns a key for a new worker's due time.
func (c *cutClock) register() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	return c.next
}

// setDue records when the block of worker key is due (0: none is).
func (c *cutClock) setDue(key uint64, at int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at == 0 {
		delete(c.due, key)
		delete(c.held, key)
	} else {
		c.due[key] = at
	}
}

// dueBy reports whether a worker other than those in skip has a block due
// at tick or before.
func (c *cutClock) dueBy(tick int64, skip func(key uint64) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, at := range c.due {
		if at <= tick && !skip(key) {
			return true
		}
	}
	return false
}

// failing is the set of partitions whose blocks the sink refuses for now:
// the poll loop pauses them and Ready reports them.
type failing struct {
	mu    sync.Mutex
	parts map[int32]bool
	loop  *loopSignal
}

// set marks part failing or not. A partition given up (ctx done) is not
// marked: its next owner starts clear.
func (f *failing) set(ctx context.Context, part int32, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.parts[part] == on || on && ctx.Err() != nil {
		return
	}
	if on {
		f.parts[part] = true
	} else {
		delete(f.parts, part)
	}
	f.loop.wake()
}

func (f *failing) has(part int32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parts[part]
}

// count is how many partitions are failing.
func (f *failing) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.parts)
}

// poisonLog logs records going to the DLQ, at most one line every 10 s
// (with how many were not logged since): a flood of bad records must not
// flood the log.
type poisonLog struct {
	log   *slog.Logger
	topic string
	at    atomic.Int64 // unix ns of the last line
	quiet atomic.Int64 // records not logged since then
}

// add logs one poison record. The error logged is the DLQ header's, which
// quotes nothing of the record.
func (l *poisonLog) add(rec *kgo.Record, reason string, dlq *kgo.Record) {
	now := time.Now().UnixNano()
	last := l.at.Load()
	if now-last < int64(10*time.Second) || !l.at.CompareAndSwap(last, now) {
		l.quiet.Add(1)
		return
	}
	var msg string
	for _, h := range dlq.Headers {
		if h.Key == DLQHeaderError {
			msg = string(h.Value)
		}
	}
	l.log.Warn("record sent to the dead-letter topic", "reason", reason, "partition", rec.Partition,
		"offset", rec.Offset, "err", msg, "dlq_topic", l.topic, "not_logged_since_last", l.quiet.Swap(0))
}
