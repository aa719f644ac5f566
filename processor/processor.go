package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/internal/backoff"
	"github.com/taillight/taillight/processor/redact"
	"github.com/taillight/taillight/sinks"
)

// Processor consumes one topic as a member of a consumer group. Create it
// with New and call Run once.
//
// It owns the poll loop, one worker per assigned partition (worker.go),
// which cuts blocks, and the committer (commit.go), which stores them.
type Processor struct {
	*env
	sink sinks.Sink
	reg  prometheus.Registerer

	cl      *kgo.Client
	clReady chan struct{} // closed once cl is set: group callbacks may run before NewClient returns
	com     *committer    // set with cl

	// bg bounds the shared streams and the committer, and ends after every
	// worker has finished.
	bg       context.Context
	bgCancel context.CancelFunc

	mu    sync.Mutex
	parts map[int32]*worker
	wms   map[int32]sinks.Watermark // watermarks read on assignment
	// Log identity (logs.go): the log name each assigned partition is
	// stored under, the partitions halted on a change of log and why, and
	// the topic ID seen on assignment.
	logNames map[int32]string
	halted   map[int32]string
	topicID  string

	state   atomic.Int32 // stateNew, stateRunning, stateStopping, stateStopped
	started atomic.Bool  // the client exists (p.cl may be read)
	polled  atomic.Int64 // records handed to workers (tests wait on it)
	lost    atomic.Int64 // OnPartitionsLost calls (tests wait on it)
	fatalMu sync.Mutex
	fatal   error
	cancel  context.CancelFunc
}

const (
	stateNew int32 = iota
	stateRunning
	stateStopping
	stateStopped
)

// New validates cfg and returns a processor writing to sink. log may be nil
// (logs are discarded); reg may be nil (metrics are not registered). The
// processor does not close sink.
func New(cfg Config, sink sinks.Sink, log *slog.Logger, reg prometheus.Registerer) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sink == nil {
		return nil, errors.New("processor: nil sink")
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	policy, err := redact.New(cfg.Redaction)
	if err != nil {
		return nil, fmt.Errorf("processor: redaction rules: %w", err)
	}
	router, err := redact.NewRouter(cfg.RoutePatterns)
	if err != nil {
		return nil, fmt.Errorf("processor: route patterns: %w", err)
	}
	p := &Processor{
		env:  newEnv(cfg, log, newMetrics(reg), policy, router),
		sink: sink, reg: reg,
		parts:    make(map[int32]*worker),
		clReady:  make(chan struct{}),
		wms:      make(map[int32]sinks.Watermark),
		logNames: make(map[int32]string),
		halted:   make(map[int32]string),
	}
	p.bg, p.bgCancel = context.WithCancel(context.Background())
	return p, nil
}

// Ready reports why the processor is not ready (nil when it is): not
// running yet, stopping, stopped on a fatal error, or the sink failing for
// some partitions. Safe for concurrent use.
func (p *Processor) Ready() error {
	switch p.state.Load() {
	case stateNew:
		return errors.New("processor not started")
	case stateRunning:
		if !p.started.Load() {
			return errors.New("processor starting")
		}
	case stateStopping, stateStopped:
		if err := p.fatalErr(); err != nil {
			return err
		}
		return errors.New("processor stopping")
	}
	if n := p.failing.count(); n > 0 {
		return fmt.Errorf("sink failing for %d partitions", n)
	}
	if err := p.stuckErr(); err != nil {
		return err
	}
	if err := p.haltedErr(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka unreachable: %w", err)
	}
	return nil
}

func (p *Processor) fatalErr() error {
	p.fatalMu.Lock()
	defer p.fatalMu.Unlock()
	return p.fatal
}

// stuckErr reports a commit that has taken longer than StuckAfter: a
// ClickHouse that accepts writes and never finishes them.
func (p *Processor) stuckErr() error {
	since := p.com.since.Load()
	if since == 0 {
		return nil
	}
	if d := time.Since(time.Unix(0, since)); d > p.cfg.StuckAfter {
		return fmt.Errorf("sink writes stuck for %s (more than %s)", d.Round(time.Second), p.cfg.StuckAfter)
	}
	return nil
}

// fail records the first fatal error and stops Run.
func (p *Processor) fail(err error) {
	p.fatalMu.Lock()
	if p.fatal == nil {
		p.fatal = err
		p.log.Error("processor stopping on a fatal error", "err", err)
	}
	p.fatalMu.Unlock()
	if p.cancel != nil {
		p.cancel()
	}
}

// Run consumes until ctx is cancelled or a fatal error (a sink schema error)
// occurs. On return every owned partition has been flushed (bounded by
// ShutdownTimeout) and committed, and the client has left the group. It
// returns nil after a cancellation and the fatal error otherwise. Run may be
// called once.
func (p *Processor) Run(ctx context.Context) error {
	if !p.state.CompareAndSwap(stateNew, stateRunning) {
		return errors.New("processor: Run called twice")
	}
	defer p.state.Store(stateStopped)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.cancel = cancel
	sealDone, watchDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sealDone)
		p.sealLoop(p.bg)
	}()
	defer func() {
		p.bgCancel()
		<-sealDone
		if p.started.Load() {
			<-p.com.done
			<-watchDone
		}
	}()

	opts := []kgo.Opt{
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(p.cfg.Topic),
		// Cooperative: a rebalance moves only the partitions that change owner,
		// the others keep flowing.
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		// ClickHouse holds the delivery watermark; Kafka commits are made by
		// hand after each block is stored, for lag monitoring only.
		kgo.DisableAutoCommit(),
		// Rebalance callbacks run between polls, so every polled record has
		// reached its partition's worker before the partition is revoked.
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(p.cfg.SessionTimeout),
		kgo.OnPartitionsRevoked(p.onRevoked),
		kgo.OnPartitionsLost(p.onLost),
		// Resume from the sink's watermark, not Kafka's committed offset.
		kgo.AdjustFetchOffsetsFn(p.adjustOffsets),
		// Positions come from the sink (adjustOffsets), and an offset out
		// of range is never reset silently: outOfRange decides (logs.go).
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
	}
	// Memory: one fetch per broker is buffered ahead of polling and rows
	// alias the decompressed batches until their block is written; the
	// default 50 MiB fetch (several times that decompressed) dominated the
	// processor's RSS, hence Kafka.FetchMaxBytes (default 1 MiB).
	cl, err := p.cfg.Kafka.NewClient(p.log, p.reg, "processor_kafka", opts...)
	if err != nil {
		return fmt.Errorf("create kafka client: %w", err)
	}
	p.cl = cl
	p.com = newCommitter(p.env, p.sink, cl, p.bg, p.fail)
	go p.com.run()
	close(p.clReady)
	p.started.Store(true)
	go func() {
		defer close(watchDone)
		p.watchLog(p.bg, p.cfg.LogCheck)
	}()
	p.ensureDLQ(ctx)
	p.log.Info("processor started", "topic", p.cfg.Topic, "group", p.cfg.Group, "dlq", p.cfg.DLQTopic)

	for {
		// Back-pressure: a worker that is behind makes the loop wait
		// rather than buffer without bound.
		for (p.backlogged() || p.budget.over()) && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-p.loop.drained:
			}
		}
		pollCtx, pollCancel := context.WithCancel(ctx)
		p.loop.poll(pollCancel)
		fetches := cl.PollRecords(pollCtx, p.cfg.MaxPollRecords)
		pollCancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			// Records polled now are neither written nor committed; the
			// next owner reads them again.
			cl.AllowRebalance()
			break
		}
		var oor []int32
		fetches.EachError(func(t string, part int32, err error) {
			switch {
			case errors.Is(err, kerr.OffsetOutOfRange) && t == p.cfg.Topic:
				oor = append(oor, part)
			case !errors.Is(err, context.Canceled):
				p.log.Warn("fetch error", "topic", t, "partition", part, "err", err)
			}
		})
		if len(oor) > 0 {
			p.outOfRange(ctx, oor)
		}
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) > 0 && !p.isHalted(fp.Partition) {
				p.polled.Add(int64(len(fp.Records)))
				p.worker(fp.Partition).push(fp.Records, fp.HighWatermark)
			}
		})
		p.applyPauses()
		cl.AllowRebalance()
	}

	p.state.Store(stateStopping)
	p.mu.Lock()
	ws := make([]*worker, 0, len(p.parts))
	for id, w := range p.parts {
		ws = append(ws, w)
		delete(p.parts, id)
	}
	clear(p.wms)
	p.m.partitions.Set(0)
	p.mu.Unlock()
	p.finish(ws)
	p.bgCancel()
	<-p.com.done
	cl.Close()
	if err := p.fatalErr(); err != nil {
		return err
	}
	p.log.Info("processor stopped")
	return nil
}

// backlogged reports whether some worker holds too many unprocessed records.
func (p *Processor) backlogged() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.parts {
		if w.backlogged() {
			return true
		}
	}
	return false
}

// applyPauses pauses and resumes partitions as their workers want. It runs
// in the poll loop between polls, never concurrently with a poll.
func (p *Processor) applyPauses() {
	var pause, resume []int32
	p.mu.Lock()
	for id, w := range p.parts {
		want := w.wantPause()
		w.mu.Lock()
		if want != w.paused {
			w.paused = want
			if want {
				pause = append(pause, id)
			} else {
				resume = append(resume, id)
			}
		}
		w.mu.Unlock()
	}
	p.mu.Unlock()
	if len(pause) > 0 {
		p.cl.PauseFetchPartitions(map[string][]int32{p.cfg.Topic: pause})
		p.m.paused.Add(float64(len(pause)))
	}
	if len(resume) > 0 {
		p.cl.ResumeFetchPartitions(map[string][]int32{p.cfg.Topic: resume})
		p.m.paused.Sub(float64(len(resume)))
	}
}

// worker returns the worker of a partition, starting it on first use.
func (p *Processor) worker(part int32) *worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.parts[part]
	if w == nil {
		wm, ok := p.wms[part]
		if !ok {
			wm = sinks.Watermark{Next: -1, MaxRawOffset: -1}
		}
		name, ok := p.logNames[part]
		if !ok {
			name = p.cfg.Topic
		}
		w = newWorker(p.env, p.com, part, name, wm)
		p.parts[part] = w
		go w.run()
	}
	return w
}

// finish has the given workers store what they hold, in parallel, each
// bounded by ShutdownTimeout (one that cannot finish in time is dropped),
// and commits their offsets to Kafka.
func (p *Processor) finish(ws []*worker) {
	var wg sync.WaitGroup
	parts := make([]int32, len(ws))
	for i, w := range ws {
		parts[i] = w.id
		wg.Go(func() {
			w.finish()
			t := time.NewTimer(p.cfg.ShutdownTimeout)
			defer t.Stop()
			select {
			case <-w.done:
			case <-t.C:
				p.log.Warn("partition did not flush in time; dropping its buffer", "partition", w.id, "timeout", p.cfg.ShutdownTimeout)
				w.cancel()
				p.awaitCancelled(w)
			}
			p.forget(w)
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(p.bg, p.cfg.ShutdownTimeout)
	defer cancel()
	p.com.commitSync(ctx, parts)
}

// cancelGrace bounds the wait for a cancelled worker to return. One blocked
// in ClickHouse I/O returns once the write or read timeout fires; a
// rebalance does not wait that long. The worker can no longer commit: its
// block's commit INSERT is made under the worker's (cancelled) context.
const cancelGrace = 5 * time.Second

// awaitCancelled waits for a cancelled worker, at most cancelGrace.
func (p *Processor) awaitCancelled(w *worker) {
	t := time.NewTimer(cancelGrace)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
		p.log.Warn("partition worker still blocked in sink I/O after cancellation; going on without it", "partition", w.id)
	}
}

// drop cancels a worker, dropping its buffers, waits for it (bounded) and
// forgets its metrics.
func (p *Processor) drop(w *worker) {
	w.cancel()
	p.awaitCancelled(w)
	p.forget(w)
	p.com.forget([]int32{w.id})
}

// forget drops a finished or cancelled worker's per-partition metrics.
func (p *Processor) forget(w *worker) {
	p.m.lag.DeleteLabelValues(strconv.Itoa(int(w.id)))
	p.failing.set(w.ctx, w.id, false)
	w.mu.Lock()
	if w.paused {
		w.paused = false
		p.m.paused.Dec()
	}
	w.mu.Unlock()
}

// take removes the workers (and assignment watermarks) of the given
// partitions of our topic.
func (p *Processor) take(tps map[string][]int32) []*worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ws []*worker
	for _, part := range tps[p.cfg.Topic] {
		delete(p.wms, part)
		delete(p.logNames, part)
		delete(p.halted, part)
		if w := p.parts[part]; w != nil {
			ws = append(ws, w)
			delete(p.parts, part)
		}
	}
	p.m.partitions.Set(float64(len(p.wms)))
	p.m.halted.Set(float64(len(p.halted)))
	p.loop.drain() // a waiting poll loop re-checks the rest
	return ws
}

func (p *Processor) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	ws := p.take(revoked)
	if len(ws) == 0 {
		return
	}
	p.log.Info("partitions revoked; flushing", "partitions", revoked[p.cfg.Topic])
	p.finish(ws)
	p.resumeAll(revoked)
}

func (p *Processor) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	ws := p.take(lost)
	p.lost.Add(1)
	p.log.Warn("partitions lost; dropping their buffers", "partitions", lost[p.cfg.Topic])
	for _, w := range ws {
		w.cancel()
	}
	for _, w := range ws {
		p.drop(w)
	}
	p.resumeAll(lost)
}

// resumeAll clears any pause left on partitions we gave up, so a later
// assignment of them fetches.
func (p *Processor) resumeAll(tps map[string][]int32) {
	if ps := tps[p.cfg.Topic]; len(ps) > 0 {
		p.cl.ResumeFetchPartitions(map[string][]int32{p.cfg.Topic: ps})
	}
}

// adjustOffsets replaces the committed offsets of newly assigned partitions
// by the sink's watermark (resolveLog), halting a partition whose Kafka log
// changed under its watermark, and remembers MaxRawOffset for their first
// block.
func (p *Processor) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	parts := offsets[p.cfg.Topic]
	if len(parts) == 0 {
		return offsets, nil
	}
	select {
	case <-p.clReady:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	kl, err := p.readKafkaLog(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.topicID = kl.TopicID
	p.mu.Unlock()
	for part := range parts {
		off, ok, err := p.resolveLog(ctx, part, kl)
		if err != nil {
			return nil, err
		}
		if !ok {
			delete(parts, part) // halted: not consumed
			continue
		}
		parts[part] = off
	}
	p.mu.Lock()
	p.m.partitions.Set(float64(len(p.wms)))
	p.mu.Unlock()
	p.log.Info("partitions assigned", "partitions", len(parts))
	return offsets, nil
}

// watermark asks the sink for the watermark of a partition's log, retrying
// transient errors until ctx ends.
func (p *Processor) watermark(ctx context.Context, log string, part int32) (sinks.Watermark, error) {
	wm := sinks.Watermark{Next: -1, MaxRawOffset: -1}
	err := p.retrySink(ctx, "read watermark", part, func(ctx context.Context) error {
		var err error
		wm, err = p.sink.Watermark(ctx, log, part)
		return err
	})
	return wm, err
}

// retrySink runs a sink read until it succeeds, retrying transient errors
// with backoff until ctx ends; a schema error stops the processor.
func (p *Processor) retrySink(ctx context.Context, what string, part int32, fn func(context.Context) error) error {
	failed := false
	err := p.backoff().Retry(ctx, func(ctx context.Context) error {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		err = fmt.Errorf("%s of partition %d: %w", what, part, err)
		if errors.Is(err, sinks.ErrSchema) {
			p.fail(err)
			return backoff.Stop(err)
		}
		return err
	}, func(attempt int, err error) {
		if attempt == 1 {
			p.log.Warn("sink read failed; retrying", "what", what, "partition", part, "err", err)
		}
		failed = true
		p.m.retries.Inc()
	})
	if err == nil && failed {
		p.log.Info("sink answers again", "what", what, "partition", part)
	}
	return err
}

// ensureDLQ creates the DLQ topic with the broker's defaults when it does
// not exist. Failure is only logged: the topic may be managed elsewhere, and
// producing to it reports the real problem.
func (p *Processor) ensureDLQ(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(p.cl).CreateTopic(ctx, -1, -1, nil, p.cfg.DLQTopic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		p.log.Info("created DLQ topic", "topic", p.cfg.DLQTopic)
	case errors.Is(err, kerr.TopicAlreadyExists):
	default:
		p.log.Warn("could not ensure the DLQ topic exists", "topic", p.cfg.DLQTopic, "err", err)
	}
}
