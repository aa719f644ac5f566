package bench

// The query benchmark behind `taillight bench-queries`: days of history
// written exactly as the processor writes in steady operation (chsink's
// raw stream, group commits of every partition's blocks, sealing), on a
// simulated clock, then every saved query timed through the dashboard's
// own HTTP handler, at two history sizes, so the cost of a window can be
// seen not to follow the history kept (DESIGN.md "Read path").

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/internal/dash"
	"github.com/taillight/taillight/processor"
	"github.com/taillight/taillight/processor/redact"
	"github.com/taillight/taillight/processor/rollup"
	"github.com/taillight/taillight/producer"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/chsink"
	"github.com/taillight/taillight/storage"
)

// Targets of the query benchmark, checked at the longest history.
const (
	TargetLastHour  = 300 * time.Millisecond // median of a panel over the last hour
	TargetLastDay   = 2 * time.Second        // median over the last 24 h
	TargetRawDay    = 5 * time.Second        // the same for the panels on trace_items
	TargetGrowth    = 1.3                    // last-hour median, longest / shortest history
	TargetFirstLoad = 2 * time.Second        // the page's first load, every panel at once
)

// rawPanels read trace_items (FINAL) and get TargetRawDay.
var rawPanels = map[string]bool{"log_search": true, "recent_exceptions": true}

// The windows every query is timed over, ending at the simulated now.
var queryWindows = []time.Duration{time.Hour, 24 * time.Hour}

const (
	packetRows  = 1024    // rows per Send, the processor's default flush.packet-rows
	packetBytes = 2 << 20 // record bytes a packet's rows may alias
)

// QueryConfig configures RunQueries.
type QueryConfig struct {
	// ClickHouse is the native address of an existing server; empty starts
	// a private local ClickHouse for the run.
	ClickHouse string
	// Database is created and migrated for the run (default
	// "qbench_<random>"); it must not exist yet. It is dropped at the end
	// on a server the run did not start, unless Keep.
	Database string
	Keep     bool
	// Rate is the simulated events/s (default 100).
	Rate float64
	// Histories are the history sizes measured, ascending (default 24h and
	// 96h): the first is written and measured, then extended to the next.
	// Each must be a multiple of CommitEvery.
	Histories []time.Duration
	// Runs of each query per window; the median is reported (default 5).
	Runs int
	// Partitions of the simulated topic (default 6).
	Partitions int
	// Seed selects the generated workload (default 1).
	Seed uint64
	// Linger is the block cadence: one block per partition per Linger, the
	// processor's flush.linger (default 500ms).
	Linger time.Duration
	// CommitEvery is how much simulated time one raw stream and one
	// Commit carry (default 5m): the rows stored are those of steady
	// operation, only the INSERT count differs. Whole minutes.
	CommitEvery time.Duration
	// SealEvery is how often Seal runs, in simulated time (default 10m;
	// the processor's sealer runs every minute, so sealed minutes are
	// split over fewer seals here). A multiple of CommitEvery.
	SealEvery time.Duration
	// Steady is the stretch before each measured size written at the
	// processor's sealing cadence, commit and seal every minute (default
	// 10m; negative: none), so the unsealed tail the views read is its
	// steady size. A multiple of CommitEvery.
	Steady time.Duration
	// MergeWait bounds the wait for the server's merges of the database to
	// finish before measuring (default 10m); negative does not wait.
	MergeWait time.Duration
	// End is the simulated now at the end of the longest history (default
	// the current minute).
	End time.Time
	// Log receives progress; default discarded.
	Log *slog.Logger
}

// prepare fills in the defaults, then reports a configuration RunQueries
// refuses.
func (c *QueryConfig) prepare() error {
	if c.Database == "" {
		c.Database = "qbench_" + randomID()
	}
	if len(c.Histories) == 0 {
		c.Histories = []time.Duration{24 * time.Hour, 96 * time.Hour}
	}
	c.Rate = cmp.Or(c.Rate, 100)
	c.Runs = cmp.Or(c.Runs, 5)
	c.Partitions = cmp.Or(c.Partitions, 6)
	c.Seed = cmp.Or(c.Seed, 1)
	c.Linger = cmp.Or(c.Linger, 500*time.Millisecond)
	c.CommitEvery = cmp.Or(c.CommitEvery, 5*time.Minute)
	c.SealEvery = cmp.Or(c.SealEvery, 10*time.Minute)
	c.Steady = cmp.Or(c.Steady, 10*time.Minute)
	c.MergeWait = cmp.Or(c.MergeWait, 10*time.Minute)
	if c.End.IsZero() {
		c.End = time.Now().UTC().Truncate(time.Minute)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case !storage.ValidIdentifier(c.Database):
		return fmt.Errorf("bench: database %q must be a plain identifier", c.Database)
	case c.Rate <= 0 || c.Rate > 1e6:
		return fmt.Errorf("bench: rate %g must be in (0, 1e6] events/s", c.Rate)
	case c.Runs < 1 || c.Partitions < 1:
		return errors.New("bench: runs and partitions must be positive")
	case c.Linger <= 0 || c.CommitEvery <= 0 || c.SealEvery <= 0:
		return errors.New("bench: linger, commit and seal intervals must be positive")
	case time.Minute%c.Linger != 0 || c.CommitEvery%time.Minute != 0 || c.SealEvery%c.CommitEvery != 0 || c.Steady%c.CommitEvery != 0:
		return fmt.Errorf("bench: the linger (%s) must divide a minute, the commit interval (%s) be whole minutes, the seal interval (%s) and the steady stretch (%s) multiples of it",
			c.Linger, c.CommitEvery, c.SealEvery, c.Steady)
	}
	for i, h := range c.Histories {
		if h <= 0 || h%c.CommitEvery != 0 || i > 0 && h <= c.Histories[i-1] {
			return fmt.Errorf("bench: histories %v must ascend, each a positive multiple of the commit interval (%s)", c.Histories, c.CommitEvery)
		}
	}
	return nil
}

// Validate reports a configuration RunQueries refuses. It leaves c as it is.
func (c QueryConfig) Validate() error { return c.prepare() }

// QueryReport is the result of RunQueries.
type QueryReport struct {
	Started        time.Time `json:"started"`
	Machine        Machine   `json:"machine"`
	ClickHouse     string    `json:"clickhouse"`
	Database       string    `json:"database"`
	Rate           float64   `json:"rate"`
	Partitions     int       `json:"partitions"`
	Seed           uint64    `json:"seed"`
	LingerSec      float64   `json:"linger_s"`
	CommitEverySec float64   `json:"commit_every_s"`
	SealEverySec   float64   `json:"seal_every_s"`
	SteadySec      float64   `json:"steady_s"`
	Runs           int       `json:"runs"`
	Sizes          []Size    `json:"sizes"`
	Checks         []Check   `json:"checks"`
}

// Size is what was stored and measured at one history size.
type Size struct {
	History    string    `json:"history"` // "1d", "2h"
	HistorySec float64   `json:"history_s"`
	Now        time.Time `json:"now"` // the simulated now the windows end at
	// Cumulative figures of the writer at this size.
	Events      int64 `json:"events"`
	FetchEvents int64 `json:"fetch_events"`
	Blocks      int64 `json:"blocks"`
	Commits     int64 `json:"commits"`
	SealCalls   int64 `json:"seal_calls"`
	Sealed      int64 `json:"sealed_blocks"`
	Dropped     int64 `json:"dropped_journal_hours"`
	// WriteSec is the wall time of writing the history added since the
	// previous size, sealing included; WriteWork is what the server did
	// meanwhile (server-wide).
	WriteSec          float64 `json:"write_s"`
	WriteEventsPerSec float64 `json:"write_events_per_sec"`
	WriteWork         *Work   `json:"write_work,omitempty"`
	// The committer's time, concurrent with generating: waiting for raw
	// rows to be stored at commits, in Commit, and in Seal.
	RawWaitSec float64 `json:"raw_wait_s"`
	CommitSec  float64 `json:"commit_s"`
	SealSec    float64 `json:"seal_s"`
	// MergeWaitSec is how long merges took to settle before measuring;
	// MergesLeft is how many were still running when measuring began.
	MergeWaitSec float64      `json:"merge_wait_s"`
	MergesLeft   uint64       `json:"merges_left"`
	Tables       []TableStats `json:"tables"`
	Totals       Totals       `json:"totals"`
	Queries      []QueryTime  `json:"queries"`
	FirstLoad    FirstLoad    `json:"first_load"`
}

// TableStats are one table's rows: count() and its active parts.
type TableStats struct {
	Table       string `json:"table"`
	Count       uint64 `json:"count"`
	PartRows    uint64 `json:"part_rows"`
	Parts       uint64 `json:"parts"`
	Partitions  uint64 `json:"partitions"`
	BytesOnDisk uint64 `json:"bytes_on_disk"`
}

// Totals are counts read back over the whole history.
type Totals struct {
	RawRows          uint64 `json:"raw_rows"`          // trace_items FINAL
	ScriptRequests   uint64 `json:"script_requests"`   // script_outcomes_1m
	EndpointRequests uint64 `json:"endpoint_requests"` // endpoint_errors_1m
	ColoRequests     uint64 `json:"colo_requests"`     // colo_requests_1m
}

// QueryTime is one saved query's timings at one size.
type QueryTime struct {
	Name    string       `json:"name"`
	Windows []WindowTime `json:"windows"`
}

// WindowTime is the runs of one query over one window.
type WindowTime struct {
	Window    string  `json:"window"`
	WindowSec float64 `json:"window_s"`
	// Wall time of the dashboard's handler: median, min and max of the runs.
	MedianMs float64 `json:"median_ms"`
	MinMs    float64 `json:"min_ms"`
	MaxMs    float64 `json:"max_ms"`
	// ServerMs is the median ClickHouse round trip the handler reported.
	ServerMs float64 `json:"server_ms"`
	Rows     int     `json:"rows"`
	Error    string  `json:"error,omitempty"`
}

// FirstLoad is the page's load over the last hour: its query list, then
// every panel and the filter pickers at once, as the browser does.
type FirstLoad struct {
	Requests int      `json:"requests"`
	FirstMs  float64  `json:"first_ms"`  // the first load after writing
	MedianMs float64  `json:"median_ms"` // of Runs loads after the query runs
	Errors   []string `json:"errors,omitempty"`
}

// RunQueries performs the query benchmark. A server it starts is stopped
// before it returns.
func RunQueries(ctx context.Context, cfg QueryConfig) (*QueryReport, error) {
	if err := cfg.prepare(); err != nil {
		return nil, err
	}
	log := cfg.Log
	rep := &QueryReport{Started: time.Now().UTC(), Machine: thisMachine(), Database: cfg.Database, Rate: cfg.Rate, Partitions: cfg.Partitions,
		Seed: cfg.Seed, LingerSec: cfg.Linger.Seconds(), CommitEverySec: cfg.CommitEvery.Seconds(),
		SealEverySec: cfg.SealEvery.Seconds(), SteadySec: max(cfg.Steady, 0).Seconds(), Runs: cfg.Runs}

	addr := cfg.ClickHouse
	rep.ClickHouse = "external " + addr
	if addr == "" {
		ch, err := privateClickHouse(ctx, "", log) // in a temporary directory Close removes
		if err != nil {
			return nil, err
		}
		defer ch.Close()
		addr = ch.Addr()
		rep.ClickHouse = "private local ClickHouse"
	}
	chCfg := chsink.DefaultConfig()
	chCfg.Addrs, chCfg.Database = []string{addr}, cfg.Database
	q, err := openQuery(chCfg)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	var exists uint64
	if err := q.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", cfg.Database).Scan(&exists); err != nil {
		return nil, fmt.Errorf("bench: look up database %s: %w", cfg.Database, err)
	}
	if exists > 0 {
		return nil, fmt.Errorf("bench: database %s already exists: the benchmark needs a fresh one", cfg.Database)
	}

	// Registered first: runs after the writer below has stopped.
	if cfg.ClickHouse != "" && !cfg.Keep {
		defer func() {
			// Bounded: the run's context may be what ended it.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := q.Exec(dctx, "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
				log.Warn("could not drop the benchmark database", "database", cfg.Database, "err", err)
			}
		}()
	}
	sw, err := newSimWriter(ctx, cfg, chCfg)
	if err != nil {
		return nil, err
	}
	defer sw.close()
	if _, err := sw.w.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("bench: migrate clickhouse: %w", err)
	}
	if v, err := sw.w.ServerVersion(ctx); err == nil {
		rep.ClickHouse += " " + v
	}

	dopts, err := chCfg.ClientOptions(cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	dconn, err := dash.Open(ctx, dopts)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer dconn.Close()
	dcfg := dash.DefaultConfig()
	dcfg.Database = cfg.Database
	srv, err := dash.New(dcfg, dconn, log, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}

	for _, h := range cfg.Histories {
		end := sw.start.Add(h)
		log.Info("writing history", "until", end, "history", fmtSpan(h))
		w0, err := serverWork(ctx, q)
		if err != nil {
			return nil, err
		}
		ev0, t0 := sw.events, time.Now()
		raw0, com0, seal0 := sw.rawWait, sw.commitTime, sw.sealTime
		if err := sw.writeUntil(ctx, end); err != nil {
			return nil, err
		}
		size := Size{History: fmtSpan(h), HistorySec: h.Seconds(), Now: end, Events: sw.events, FetchEvents: sw.fetch,
			Blocks: sw.blocks, Commits: sw.commits, SealCalls: sw.sealCalls, Sealed: sw.sealed, Dropped: sw.dropped}
		size.WriteSec = time.Since(t0).Seconds()
		size.WriteEventsPerSec = float64(sw.events-ev0) / size.WriteSec
		size.RawWaitSec = (sw.rawWait - raw0).Seconds()
		size.CommitSec = (sw.commitTime - com0).Seconds()
		size.SealSec = (sw.sealTime - seal0).Seconds()
		if w1, err := serverWork(ctx, q); err == nil {
			size.WriteWork = w1.sub(w0)
		}
		log.Info("history written", "history", size.History, "events", sw.events, "seconds", size.WriteSec)
		if err := measure(ctx, cfg, q, srv, &size); err != nil {
			return nil, err
		}
		rep.Sizes = append(rep.Sizes, size)
	}
	rep.Machine.LoadEnd = load1()
	rep.Checks = queryChecks(rep)
	return rep, nil
}

// ---- writing ----

// simWriter writes the simulated history through a chsink.Writer on a
// simulated clock, block by block as the processor cuts them. Like the
// processor, it fills the next blocks while a committer goroutine stores
// the previous ones and seals.
type simWriter struct {
	cfg    QueryConfig
	w      *chsink.Writer
	topic  string
	parts  []int32
	start  time.Time // the simulated start of the history
	at     time.Time // the simulated time written up to
	stepNs int64     // arrival spacing of events
	now    atomic.Int64

	gen    *producer.Generator
	policy *redact.Policy
	router *redact.Router
	hash   kgo.TopicPartitioner
	rec    kgo.Record // scratch: the key the partitioner hashes
	dec    schemas.Decoder
	item   schemas.TraceItem
	buf    []byte

	offsets     []int64
	first, last []int64 // offsets of each partition's block being cut, first -1 when empty
	accs        []*rollup.Accumulator
	pending     []*sinks.Block // cut, not handed to the committer
	pkt         *packet
	snd         *sender
	next        int64 // index of the next event
	events      int64
	fetch       int64

	// The committer: jobs in commit order, inflight counts those not done.
	jobs     chan commitJob
	inflight sync.WaitGroup
	exited   chan struct{}
	mu       sync.Mutex
	err      error // the committer's first error
	// Written by the committer; read after inflight.Wait.
	blocks, commits, sealCalls, sealed, dropped int64
	// Wall time the committer spent waiting for raw rows to be stored, in
	// Commit and in Seal.
	rawWait, commitTime, sealTime time.Duration
}

// commitJob is one group commit: wait for its raw rows (the stream's
// Close), then Commit its blocks at the simulated time at, then seal
// if asked.
type commitJob struct {
	at     time.Time
	raw    chan error
	blocks []*sinks.Block
	seal   bool
}

func newSimWriter(ctx context.Context, cfg QueryConfig, chCfg chsink.Config) (*simWriter, error) {
	maxH := cfg.Histories[len(cfg.Histories)-1]
	s := &simWriter{cfg: cfg, topic: schemas.DefaultTopic, start: cfg.End.Add(-maxH),
		stepNs: int64(float64(time.Second) / cfg.Rate)}
	s.at = s.start
	s.now.Store(s.start.UnixNano())
	w, err := chsink.New(ctx, chCfg, cfg.Log, nil, chsink.WithClock(func() time.Time { return time.Unix(0, s.now.Load()).UTC() }))
	if err != nil {
		return nil, fmt.Errorf("bench: connect to clickhouse: %w", err)
	}
	s.w = w
	if s.gen, err = producer.NewGenerator(producer.GenConfig{Seed: cfg.Seed, Start: s.start, Step: time.Duration(s.stepNs)}); err != nil {
		w.Close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	// The processor's defaults: the runtime policy, no extra rules or
	// route patterns.
	if s.policy, err = redact.New(redact.Rules{}); err != nil {
		w.Close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	if s.router, err = redact.NewRouter(nil); err != nil {
		w.Close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	// Keyed by script, as `taillight generate` produces (Kafka's murmur2).
	s.hash = kgo.StickyKeyPartitioner(nil).ForTopic(s.topic)
	n := cfg.Partitions
	s.parts, s.offsets, s.first, s.last = make([]int32, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i := range n {
		s.parts[i], s.first[i] = int32(i), -1
		s.accs = append(s.accs, rollup.New())
	}
	s.snd = newSender(ctx, w, s.topic)
	// One job queued behind the one running: generating stays at most two
	// commits ahead of what is stored.
	s.jobs, s.exited = make(chan commitJob, 1), make(chan struct{})
	go s.committer(ctx)
	return s, nil
}

func (s *simWriter) close() {
	close(s.jobs)
	<-s.exited
	s.snd.stop()
	s.w.Close()
}

func (s *simWriter) arrival(i int64) int64 { return s.start.UnixNano() + i*s.stepNs }

func (s *simWriter) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// writeUntil writes the history up to end: a block per partition per
// linger, committed in groups every CommitEvery, sealed every SealEvery,
// and the last Steady before end both every minute. It returns once all
// is stored and sealed.
func (s *simWriter) writeUntil(ctx context.Context, end time.Time) error {
	steady := end.Add(-max(s.cfg.Steady, 0))
	for s.at.Before(end) {
		every, sealEvery := s.cfg.CommitEvery, s.cfg.SealEvery
		if !s.at.Before(steady) {
			every, sealEvery = time.Minute, time.Minute
		}
		commitAt := s.at.Add(every)
		for s.at.Before(commitAt) {
			cut := s.at.Add(s.cfg.Linger)
			for s.arrival(s.next) < cut.UnixNano() {
				if err := s.add(ctx); err != nil {
					return err
				}
			}
			s.cut()
			s.at = cut
		}
		if commitAt.Sub(s.start)%(6*time.Hour) == 0 {
			s.cfg.Log.Info("generated", "until", commitAt, "events", s.events)
		}
		seal := commitAt.Sub(s.start)%sealEvery == 0 || !commitAt.Before(end)
		if err := s.commit(ctx, commitAt, seal); err != nil {
			return err
		}
	}
	s.inflight.Wait()
	return s.failed()
}

// add generates the next event and processes it as the processor does:
// decode, redact, flatten into a raw row, add to its partition's rollups.
func (s *simWriter) add(ctx context.Context) error {
	var tr producer.Truth
	s.buf, tr = s.gen.Next(s.buf[:0])
	if s.pkt != nil && (s.pkt.n == packetRows || len(s.pkt.arena)+len(s.buf) > cap(s.pkt.arena)) {
		s.snd.in <- sendOp{pkt: s.pkt}
		s.pkt = nil
	}
	if s.pkt == nil {
		select {
		case s.pkt = <-s.snd.free:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	pk := s.pkt
	if len(pk.arena)+len(s.buf) > cap(pk.arena) { // an item larger than a packet's arena
		pk.arena = make([]byte, 0, len(s.buf))
	}
	off := len(pk.arena)
	pk.arena = append(pk.arena, s.buf...)
	value := pk.arena[off:]

	s.rec.Key = append(s.rec.Key[:0], tr.Script...)
	i := s.hash.Partition(&s.rec, len(s.parts))
	o := s.offsets[i]
	s.offsets[i]++
	if s.first[i] < 0 {
		s.first[i] = o
	}
	s.last[i] = o
	// Zero copy, as the processor: the row's strings alias the packet's
	// arena, as they alias a Kafka record value there.
	if err := s.dec.DecodeZeroCopy(value, &s.item); err != nil {
		return fmt.Errorf("bench: decode generated item %d: %w", s.next, err)
	}
	s.policy.Item(&s.item)
	r := pk.nextRow()
	processor.FillRow(r, &s.item, s.router, s.parts[i], o, s.arrival(s.next)/int64(time.Millisecond))
	s.accs[i].Add(r)
	s.next++
	s.events++
	if tr.Kind == schemas.KindFetch {
		s.fetch++
	}
	return nil
}

// cut ends the linger: every partition with records gets its block.
func (s *simWriter) cut() {
	for i, p := range s.parts {
		if s.first[i] < 0 {
			continue
		}
		s.pending = append(s.pending, &sinks.Block{Topic: s.topic, Partition: p, FirstOffset: s.first[i],
			LastOffset: s.last[i], Rollups: s.accs[i].Flush(nil)})
		s.first[i] = -1
	}
}

// commit ends the raw stream carrying the pending blocks' rows and hands
// the blocks to the committer.
func (s *simWriter) commit(ctx context.Context, at time.Time, seal bool) error {
	if err := s.failed(); err != nil {
		return err
	}
	if s.pkt != nil && s.pkt.n > 0 {
		s.snd.in <- sendOp{pkt: s.pkt}
		s.pkt = nil
	}
	job := commitJob{at: at, raw: make(chan error, 1), blocks: s.pending, seal: seal}
	s.pending = nil
	s.snd.in <- sendOp{done: job.raw}
	s.inflight.Add(1)
	select {
	case s.jobs <- job:
		return nil
	case <-ctx.Done():
		s.inflight.Done()
		return ctx.Err()
	}
}

// committer runs the commit jobs in order; after an error it only drains.
func (s *simWriter) committer(ctx context.Context) {
	defer close(s.exited)
	for job := range s.jobs {
		if s.failed() == nil {
			if err := s.run(ctx, job); err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
			}
		}
		s.inflight.Done()
	}
}

// run stores a job's raw rows, then its blocks' rollups and marks in one
// Commit stamped with the simulated time at, then seals.
func (s *simWriter) run(ctx context.Context, job commitJob) error {
	t0 := time.Now()
	select {
	case err := <-job.raw:
		if err != nil {
			return fmt.Errorf("bench: store raw rows up to %s: %w", job.at.Format(time.RFC3339), err)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	t1 := time.Now()
	s.rawWait += t1.Sub(t0)
	s.now.Store(job.at.UnixNano())
	if len(job.blocks) > 0 {
		if err := s.w.Commit(ctx, job.blocks); err != nil {
			return fmt.Errorf("bench: commit %d blocks at %s: %w", len(job.blocks), job.at.Format(time.RFC3339), err)
		}
	}
	t2 := time.Now()
	s.commitTime += t2.Sub(t1)
	s.blocks += int64(len(job.blocks))
	s.commits++
	if !job.seal {
		return nil
	}
	// Until caught up, as the processor's sealer.
	defer func() { s.sealTime += time.Since(t2) }()
	for {
		res, err := s.w.Seal(ctx, s.topic, s.parts)
		s.sealCalls++
		s.sealed += int64(res.Blocks)
		s.dropped += int64(res.DroppedJournal)
		if err != nil {
			return fmt.Errorf("bench: seal at %s: %w", job.at.Format(time.RFC3339), err)
		}
		if !res.More {
			return nil
		}
	}
}

// packet is raw rows on their way to the stream, with the record bytes
// their strings alias.
type packet struct {
	arena []byte
	rows  []sinks.RawRow
	n     int
}

// release readies p for reuse. A fresh arena, never the old one:
// rollup.Accumulator keeps the key strings of the latest Add (a map
// assignment replaces the key), which alias it until the block is cut.
// The rows' strings are dropped (RawRow.Reset): a stale one past a reused
// slice's length would pin its arena.
func (p *packet) release() {
	for i := range p.rows[:p.n] {
		p.rows[i].Reset()
	}
	p.arena, p.n = make([]byte, 0, packetBytes), 0
}

func (p *packet) nextRow() *sinks.RawRow {
	if p.n == len(p.rows) {
		p.rows = append(p.rows, sinks.RawRow{})
	}
	p.n++
	return &p.rows[p.n-1]
}

// sendOp is a packet to send, or (pkt nil) the request to close the
// stream, answered on done.
type sendOp struct {
	pkt  *packet
	done chan error
}

// sender sends packets on a raw stream in its own goroutine, so
// generating the next rows overlaps the server's insert work.
type sender struct {
	in     chan sendOp
	free   chan *packet
	exited chan struct{}
}

func newSender(ctx context.Context, w *chsink.Writer, topic string) *sender {
	const packets = 3
	s := &sender{in: make(chan sendOp, packets), free: make(chan *packet, packets), exited: make(chan struct{})}
	for range packets {
		s.free <- &packet{arena: make([]byte, 0, packetBytes)}
	}
	go func() {
		defer close(s.exited)
		var st sinks.RawStream
		var err error // the first error since the last close
		defer func() {
			if st != nil {
				st.Abort()
			}
		}()
		for op := range s.in {
			if op.pkt != nil {
				if err == nil && st == nil {
					// Partition 0: every partition is of stream group 0 on one server.
					st, err = w.Stream(ctx, topic, 0)
				}
				if err == nil {
					err = st.Send(op.pkt.rows[:op.pkt.n])
				}
				op.pkt.release()
				s.free <- op.pkt
				continue
			}
			if st != nil {
				if err == nil {
					err = st.Close()
				} else {
					st.Abort()
				}
				st = nil
			}
			op.done <- err
			err = nil
		}
	}()
	return s
}

func (s *sender) stop() {
	close(s.in)
	<-s.exited
}

// ---- measuring ----

// measure fills size's table figures and query timings, at the simulated
// now size.Now.
func measure(ctx context.Context, cfg QueryConfig, q driver.Conn, srv *dash.Server, size *Size) error {
	log := cfg.Log
	t0 := time.Now()
	left, err := waitMerges(ctx, q, cfg.Database, cfg.MergeWait)
	if err != nil {
		return err
	}
	size.MergeWaitSec, size.MergesLeft = time.Since(t0).Seconds(), left
	if size.Tables, err = tableStats(ctx, q, cfg.Database); err != nil {
		return err
	}
	if size.Totals, err = totals(ctx, q, cfg.Database); err != nil {
		return err
	}

	log.Info("measuring the dashboard's first load", "history", size.History)
	size.FirstLoad.FirstMs, size.FirstLoad.Requests, size.FirstLoad.Errors = firstLoad(ctx, srv, size.Now)

	for _, qu := range srv.Queries() {
		qt := QueryTime{Name: qu.Name}
		for _, win := range queryWindows {
			log.Info("timing", "query", qu.Name, "window", fmtWindow(win), "history", size.History)
			qt.Windows = append(qt.Windows, timeQuery(ctx, srv, qu, size.Now.Add(-win), size.Now, cfg.Runs))
		}
		size.Queries = append(size.Queries, qt)
	}

	loads := make([]float64, 0, cfg.Runs)
	for range cfg.Runs {
		ms, _, errs := firstLoad(ctx, srv, size.Now)
		loads = append(loads, ms)
		size.FirstLoad.Errors = append(size.FirstLoad.Errors, errs...)
	}
	size.FirstLoad.MedianMs = median(loads)
	return nil
}

// waitMerges polls until no merge of db is running, for at most limit; it
// returns how many were still running.
func waitMerges(ctx context.Context, q driver.Conn, db string, limit time.Duration) (uint64, error) {
	count := func() (uint64, error) {
		var n uint64
		if err := q.QueryRow(ctx, "SELECT count() FROM system.merges WHERE database = ?", db).Scan(&n); err != nil {
			return 0, fmt.Errorf("bench: read system.merges: %w", err)
		}
		return n, nil
	}
	n, err := count()
	if err != nil || n == 0 || limit < 0 {
		return n, err
	}
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-deadline.C:
			return count()
		case <-tick.C:
		}
		if n, err = count(); err != nil || n == 0 {
			return n, err
		}
	}
}

var statTables = []string{chsink.TableTraceItems, chsink.TableRollupJournal, chsink.TableRollupMinutes}

func tableStats(ctx context.Context, q driver.Conn, db string) ([]TableStats, error) {
	var out []TableStats
	for _, t := range statTables {
		s := TableStats{Table: t}
		if err := q.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s", db, t)).Scan(&s.Count); err != nil {
			return nil, fmt.Errorf("bench: count %s: %w", t, err)
		}
		err := q.QueryRow(ctx, `SELECT count(), sum(rows), uniqExact(partition), sum(bytes_on_disk) FROM system.parts
WHERE database = ? AND table = ? AND active`, db, t).Scan(&s.Parts, &s.PartRows, &s.Partitions, &s.BytesOnDisk)
		if err != nil {
			return nil, fmt.Errorf("bench: read system.parts of %s: %w", t, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func totals(ctx context.Context, q driver.Conn, db string) (Totals, error) {
	var t Totals
	for _, c := range []struct {
		dst   *uint64
		query string
	}{
		{&t.RawRows, "SELECT count() FROM %s.trace_items FINAL"},
		{&t.ScriptRequests, "SELECT sum(requests) FROM %s.script_outcomes_1m"},
		{&t.EndpointRequests, "SELECT sum(requests) FROM %s.endpoint_errors_1m"},
		{&t.ColoRequests, "SELECT sum(requests) FROM %s.colo_requests_1m"},
	} {
		sql := fmt.Sprintf(c.query, db)
		if err := q.QueryRow(ctx, sql).Scan(c.dst); err != nil {
			return t, fmt.Errorf("bench: %s: %w", sql, err)
		}
	}
	return t, nil
}

// panelParams are the parameters the page sends for q over [from, to)
// with no filter set (internal/dash/web/app.js loadPanel).
func panelParams(q storage.Query, from, to time.Time) url.Values {
	v := url.Values{}
	v.Set("from", strconv.FormatInt(from.Unix(), 10))
	v.Set("to", strconv.FormatInt(to.Unix(), 10))
	for _, k := range []string{"script", "namespace", "worker_id", "colo", "outcome", "search"} {
		v.Set(k, "")
	}
	limit := "10"
	if q.Chart == storage.ChartTable {
		limit = "50"
	}
	v.Set("limit", limit)
	return v
}

// apiResult is the part of a dash.Result the benchmark reads.
type apiResult struct {
	Rows      [][]any `json:"rows"`
	ElapsedMS float64 `json:"elapsed_ms"`
	Error     string  `json:"error"`
}

// get calls the dashboard's handler and returns its wall time.
func get(ctx context.Context, srv http.Handler, path string) (time.Duration, apiResult, error) {
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	rec := httptest.NewRecorder()
	start := time.Now()
	srv.ServeHTTP(rec, req)
	d := time.Since(start)
	var res apiResult // also decodes the other answers' JSON objects, to nothing
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		return d, res, fmt.Errorf("%s: HTTP %d, undecodable answer: %w", path, rec.Code, err)
	}
	if rec.Code != http.StatusOK {
		return d, res, fmt.Errorf("%s: HTTP %d: %s", path, rec.Code, res.Error)
	}
	return d, res, nil
}

func timeQuery(ctx context.Context, srv http.Handler, q storage.Query, from, to time.Time, runs int) WindowTime {
	wt := WindowTime{Window: fmtWindow(to.Sub(from)), WindowSec: to.Sub(from).Seconds()}
	path := "/api/query/" + q.Name + "?" + panelParams(q, from, to).Encode()
	var walls, server []float64
	for range runs {
		d, res, err := get(ctx, srv, path)
		if err != nil {
			wt.Error = err.Error()
			return wt
		}
		walls = append(walls, millis(d))
		server = append(server, res.ElapsedMS)
		wt.Rows = len(res.Rows)
	}
	wt.MedianMs, wt.ServerMs = median(walls), median(server)
	wt.MinMs, wt.MaxMs = slices.Min(walls), slices.Max(walls)
	return wt
}

// firstLoad is the page's load over the last hour before now: the query
// list, then every panel and the filter pickers concurrently. It returns
// the wall time, the requests made and their errors.
func firstLoad(ctx context.Context, srv *dash.Server, now time.Time) (float64, int, []string) {
	from := now.Add(-time.Hour)
	start := time.Now()
	var errs []string
	if _, _, err := get(ctx, srv, "/api/queries"); err != nil {
		errs = append(errs, err.Error())
	}
	paths := []string{fmt.Sprintf("/api/filters?from=%d&to=%d", from.Unix(), now.Unix())}
	for _, q := range srv.Queries() {
		if q.Panel { // the explorer's queries load when it is opened
			paths = append(paths, "/api/query/"+q.Name+"?"+panelParams(q, from, now).Encode())
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range paths {
		wg.Go(func() {
			if _, _, err := get(ctx, srv, p); err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return millis(time.Since(start)), len(paths) + 1, errs
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// fmtSpan renders a history or window: "4d", "2h", "90m".
func fmtSpan(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// fmtWindow renders a query window in hours, as the page names them
// ("24h"), apart from history sizes ("1d").
func fmtWindow(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmtSpan(d)
}

// ---- verdicts and output ----

// window returns the timing of query name over win at size s.
func (s *Size) window(name string, win time.Duration) (WindowTime, bool) {
	for _, q := range s.Queries {
		if q.Name != name {
			continue
		}
		for _, w := range q.Windows {
			if w.WindowSec == win.Seconds() {
				return w, true
			}
		}
	}
	return WindowTime{}, false
}

// Growth is the last-hour median of query name at the longest history
// over the shortest's; 0 with a single size or a missing figure.
func (r *QueryReport) Growth(name string) float64 {
	if len(r.Sizes) < 2 {
		return 0
	}
	a, okA := r.Sizes[0].window(name, time.Hour)
	b, okB := r.Sizes[len(r.Sizes)-1].window(name, time.Hour)
	if !okA || !okB || a.Error != "" || b.Error != "" || a.MedianMs <= 0 {
		return 0
	}
	return b.MedianMs / a.MedianMs
}

func queryChecks(r *QueryReport) []Check {
	if len(r.Sizes) == 0 {
		return nil
	}
	last := &r.Sizes[len(r.Sizes)-1]
	at := "@" + last.History
	var cs []Check
	for i := range r.Sizes {
		s := &r.Sizes[i]
		ok := s.Totals.ScriptRequests == uint64(s.Events) && s.Totals.RawRows == uint64(s.Events) &&
			s.Totals.EndpointRequests == uint64(s.FetchEvents) && s.Totals.ColoRequests == uint64(s.FetchEvents)
		cs = append(cs, Check{"rows and rollups = events written @" + s.History, float64(s.Events), "equal", ok})
	}
	for _, q := range last.Queries {
		if w, ok := last.window(q.Name, time.Hour); ok {
			cs = append(cs, limitCheck(q.Name+" last 1h "+at+" (ms)", w, TargetLastHour))
		}
		lim := TargetLastDay
		if rawPanels[q.Name] {
			lim = TargetRawDay
		}
		if w, ok := last.window(q.Name, 24*time.Hour); ok {
			cs = append(cs, limitCheck(q.Name+" last 24h "+at+" (ms)", w, lim))
		}
		if len(r.Sizes) > 1 {
			g := r.Growth(q.Name)
			cs = append(cs, Check{fmt.Sprintf("%s last 1h growth %s→%s", q.Name, r.Sizes[0].History, last.History),
				g, fmt.Sprintf("≤ %.1f", TargetGrowth), g > 0 && g <= TargetGrowth})
		}
	}
	fl := last.FirstLoad
	cs = append(cs, Check{"first load, all panels " + at + " (ms)", fl.FirstMs, fmt.Sprintf("< %d", TargetFirstLoad.Milliseconds()),
		len(fl.Errors) == 0 && fl.FirstMs < float64(TargetFirstLoad.Milliseconds())})
	return cs
}

func limitCheck(name string, w WindowTime, lim time.Duration) Check {
	return Check{name, w.MedianMs, fmt.Sprintf("≤ %d", lim.Milliseconds()), w.Error == "" && w.MedianMs <= float64(lim.Milliseconds())}
}

// WriteTable prints r as a human-readable table.
func (r *QueryReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "taillight bench-queries: %g events/s on %d partitions (seed %d), block every %gs, commit every %gs, seal every %gs (every 60s for the last %gs before each size); %s, database %s\n",
		r.Rate, r.Partitions, r.Seed, r.LingerSec, r.CommitEverySec, r.SealEverySec, r.SteadySec, r.ClickHouse, r.Database)
	fmt.Fprintf(w, "machine: %d CPUs (%s), %d MiB; load %.1f → %.1f; medians of %d runs through the dashboard's handler\n\n",
		r.Machine.NProc, r.Machine.CPUModel, r.Machine.MemoryMiB, r.Machine.LoadStart, r.Machine.LoadEnd, r.Runs)

	fmt.Fprintf(w, "%-8s %12s %10s %10s %10s %9s %8s %8s %11s\n", "history", "events", "blocks", "write s", "events/s", "seals", "sealed", "dropped", "merge wait")
	for _, s := range r.Sizes {
		fmt.Fprintf(w, "%-8s %12d %10d %10.1f %10.0f %9d %8d %8d %9.1f s", s.History, s.Events, s.Blocks, s.WriteSec,
			s.WriteEventsPerSec, s.SealCalls, s.Sealed, s.Dropped, s.MergeWaitSec)
		if s.MergesLeft > 0 {
			fmt.Fprintf(w, " (%d merges still running)", s.MergesLeft)
		}
		fmt.Fprintln(w)
	}
	for _, s := range r.Sizes {
		fmt.Fprintf(w, "writing %s, besides generating: %.1f s waiting for raw rows at commits, %.1f s in Commit, %.1f s sealing\n",
			s.History, s.RawWaitSec, s.CommitSec, s.SealSec)
		if s.WriteWork != nil {
			fmt.Fprintf(w, "ClickHouse while writing %s: %s\n", s.History, s.WriteWork)
		}
	}

	fmt.Fprintf(w, "\n%-8s %-16s %12s %12s %7s %11s %11s\n", "history", "table", "count()", "part rows", "parts", "partitions", "MiB on disk")
	for _, s := range r.Sizes {
		for _, t := range s.Tables {
			fmt.Fprintf(w, "%-8s %-16s %12d %12d %7d %11d %11.1f\n", s.History, t.Table, t.Count, t.PartRows, t.Parts, t.Partitions,
				float64(t.BytesOnDisk)/(1<<20))
		}
		fmt.Fprintf(w, "%-8s %-16s events %d (fetch %d); read back: trace_items FINAL %d, script_outcomes_1m %d, endpoint_errors_1m %d, colo_requests_1m %d\n",
			s.History, "totals", s.Events, s.FetchEvents, s.Totals.RawRows, s.Totals.ScriptRequests, s.Totals.EndpointRequests, s.Totals.ColoRequests)
	}

	fmt.Fprintf(w, "\n%-22s", "median ms")
	for _, win := range queryWindows {
		for _, s := range r.Sizes {
			fmt.Fprintf(w, " %11s", fmtWindow(win)+"@"+s.History)
		}
		if win == time.Hour && len(r.Sizes) > 1 {
			fmt.Fprintf(w, " %8s", "growth")
		}
	}
	fmt.Fprintln(w)
	if len(r.Sizes) > 0 {
		for _, q := range r.Sizes[0].Queries {
			fmt.Fprintf(w, "%-22s", q.Name)
			for _, win := range queryWindows {
				for i := range r.Sizes {
					wt, ok := r.Sizes[i].window(q.Name, win)
					switch {
					case !ok:
						fmt.Fprintf(w, " %11s", "-")
					case wt.Error != "":
						fmt.Fprintf(w, " %11s", "error")
					default:
						fmt.Fprintf(w, " %11.1f", wt.MedianMs)
					}
				}
				if win == time.Hour && len(r.Sizes) > 1 {
					fmt.Fprintf(w, " %7.2f×", r.Growth(q.Name))
				}
			}
			fmt.Fprintln(w)
		}
	}
	for _, s := range r.Sizes {
		fmt.Fprintf(w, "first load @%s (%d requests, last hour): first %.0f ms, median of %d %.0f ms\n",
			s.History, s.FirstLoad.Requests, s.FirstLoad.FirstMs, r.Runs, s.FirstLoad.MedianMs)
	}
	for _, s := range r.Sizes {
		for _, q := range s.Queries {
			for _, wt := range q.Windows {
				if wt.Error != "" {
					fmt.Fprintf(w, "error @%s %s %s: %s\n", s.History, q.Name, wt.Window, wt.Error)
				}
			}
		}
		for _, e := range s.FirstLoad.Errors {
			fmt.Fprintf(w, "error @%s first load: %s\n", s.History, e)
		}
	}

	fmt.Fprintf(w, "\n%-48s %10s %8s %s\n", "target", "value", "limit", "")
	for _, c := range r.Checks {
		v := "FAIL"
		if c.Pass {
			v = "PASS"
		}
		fmt.Fprintf(w, "%-48s %10.2f %8s %s\n", c.Name, c.Value, c.Limit, v)
	}
}
