// Package bench is the end-to-end benchmark behind `taillight bench`: a fixed
// seeded workload through real Kafka, the processor (as a subprocess, so its
// CPU and memory are its own) and ClickHouse, measured against a decode-only
// reference consumer over the same records.
package bench

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/producer"
	"github.com/taillight/taillight/sinks/chsink"
)

// Targets the report is checked against (BENCHMARKS.md, "Targets").
const (
	TargetEventsRatio = 0.45        // end-to-end events/s ≥ 45% of the reference's
	TargetCPURatio    = 1.3         // processor CPU per event ≤ 1.3× the reference's
	TargetPeakRSS     = 300 << 20   // bytes
	TargetP99         = time.Second // event-to-queryable at half the maximum rate
	pollEvery         = 50 * time.Millisecond
	// settleMax bounds the wait for the server's merges to end after the
	// throughput phase.
	settleMax = 3 * time.Minute
)

// Config configures Run.
type Config struct {
	// Exe is the taillight binary run as `bench-ref`, and as `migrate` and
	// `process` unless ProcessExe is set. Required.
	Exe string
	// ProcessExe, when set, is the taillight binary that migrates the
	// database and processes: another build measured by this harness (an
	// A/B of two releases, each with its own schema).
	ProcessExe string
	// N is the number of TraceItems of the throughput phase (default 1e6).
	N int
	// Seed selects the generated workload (default 1).
	Seed uint64
	// Partitions of the benchmark topic (default 4).
	Partitions int
	// Brokers of an existing Kafka cluster; empty starts a local Apache
	// Kafka (internal/devenv: java and the jars install-kafka.sh fetches) for
	// the run.
	Brokers []string
	// ClickHouse is the native address of an existing server; empty starts a
	// private local ClickHouse for the run. Its CPU is measured only then.
	ClickHouse string
	// LatencyRate is the offered rate of the latency phase in events/s
	// (default half the processor's measured events/s); LatencyDuration its
	// length (default 20s). A negative LatencyDuration skips the phase.
	LatencyRate     float64
	LatencyDuration time.Duration
	// ProcessArgs are extra flags for `taillight process`.
	ProcessArgs []string
	// CPUProfile, when set, is where the processor writes a CPU profile of
	// its whole run (it is then started as `bench-process`).
	CPUProfile string
	// MemProfile, when set, is where the processor writes the heap profile
	// of its highest heap in use.
	MemProfile string
	// Timeout bounds each phase's wait (default 30m).
	Timeout time.Duration
	// Log receives progress; default discarded.
	Log *slog.Logger
}

// prepare fills in the defaults, then reports a configuration Run refuses.
func (c *Config) prepare() error {
	c.N = cmp.Or(c.N, 1_000_000)
	c.Seed = cmp.Or(c.Seed, 1)
	c.Partitions = cmp.Or(c.Partitions, 4)
	c.LatencyDuration = cmp.Or(c.LatencyDuration, 20*time.Second)
	c.Timeout = cmp.Or(c.Timeout, 30*time.Minute)
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Exe == "":
		return errors.New("bench: the taillight binary is required")
	case c.N < 0 || c.Partitions < 0 || c.LatencyRate < 0 || c.Timeout < 0:
		return errors.New("bench: count, partitions, latency rate and timeout must not be negative")
	}
	return nil
}

// Validate reports a configuration Run refuses. It leaves c as it is.
func (c Config) Validate() error { return c.prepare() }

// Side is one consumer's throughput figures.
type Side struct {
	Seconds          float64 `json:"seconds"`
	EventsPerSec     float64 `json:"events_per_sec"`
	MBPerSec         float64 `json:"mb_per_sec"`
	CPUSeconds       float64 `json:"cpu_seconds"`
	CPUSecPerMillion float64 `json:"cpu_sec_per_million"`
	PeakRSSMiB       float64 `json:"peak_rss_mib"`
}

// Latency is the event-to-queryable latency at an offered rate.
type Latency struct {
	OfferedRate  float64 `json:"offered_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	Events       int     `json:"events"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	ResolutionMs float64 `json:"resolution_ms"`
	// PeakRSSMiB is the processor's peak RSS over both phases.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// CPU per million events offered during the phase, from its start to
	// the last sighting: the processor's, and ClickHouse's (-1 when the
	// server is not ours).
	ProcessorCPUSecPerMillion  float64 `json:"processor_cpu_sec_per_million"`
	ClickHouseCPUSecPerMillion float64 `json:"clickhouse_cpu_sec_per_million"`
	ClickHouseWork             *Work   `json:"clickhouse_work,omitempty"`
}

// Work is what ClickHouse did during a phase, from its system.events
// (server-wide: on a shared server it includes other clients' work).
type Work struct {
	Inserts      uint64 `json:"inserts"`
	InsertedRows uint64 `json:"inserted_rows"`
	Merges       uint64 `json:"merges"`
	MergedRows   uint64 `json:"merged_rows"`
	// SelectedMarks are granules (8,192 rows) read by queries (the bench's polls).
	SelectedMarks uint64 `json:"selected_marks"`
}

func (w Work) String() string {
	return fmt.Sprintf("%d INSERTs of %d rows, %d rows merged (%.1f per inserted row), %d granules read by queries",
		w.Inserts, w.InsertedRows, w.MergedRows, float64(w.MergedRows)/float64(max(w.InsertedRows, 1)), w.SelectedMarks)
}

// serverWork reads ClickHouse's cumulative insert and merge counters.
func serverWork(ctx context.Context, q driver.Conn) (Work, error) {
	rows, err := q.Query(ctx, "SELECT event, value FROM system.events WHERE event IN ('InsertQuery', 'InsertedRows', 'Merge', 'MergedRows', 'SelectedMarks')")
	if err != nil {
		return Work{}, fmt.Errorf("bench: read system.events: %w", err)
	}
	defer rows.Close()
	var w Work
	for rows.Next() {
		var name string
		var v uint64
		if err := rows.Scan(&name, &v); err != nil {
			return Work{}, fmt.Errorf("bench: read system.events: %w", err)
		}
		switch name {
		case "InsertQuery":
			w.Inserts = v
		case "InsertedRows":
			w.InsertedRows = v
		case "Merge":
			w.Merges = v
		case "MergedRows":
			w.MergedRows = v
		case "SelectedMarks":
			w.SelectedMarks = v
		}
	}
	return w, rows.Err()
}

func (w Work) sub(v Work) *Work {
	return &Work{Inserts: w.Inserts - v.Inserts, InsertedRows: w.InsertedRows - v.InsertedRows,
		Merges: w.Merges - v.Merges, MergedRows: w.MergedRows - v.MergedRows, SelectedMarks: w.SelectedMarks - v.SelectedMarks}
}

// Settled is what the throughput phase cost ClickHouse up to the end of the
// merges it started (a part written now is merged later, at a cost the
// phase itself does not show) and what it stored.
type Settled struct {
	// Seconds from the processor's start until no merge of the run's
	// database was running.
	Seconds float64 `json:"seconds"`
	// CPUSecPerMillion is the server's CPU over those seconds per million
	// events (-1 when the server is not ours); Work what it did.
	CPUSecPerMillion float64 `json:"cpu_sec_per_million"`
	Work             *Work   `json:"work"`
	// Bytes on disk of the active parts (compressed data, marks, indexes)
	// per event: trace_items, and every table of the database.
	RawBytesPerEvent float64 `json:"raw_bytes_per_event"`
	AllBytesPerEvent float64 `json:"all_bytes_per_event"`
	RawParts         int64   `json:"raw_parts"`
	// JournalRowsPerEvent are rollup_journal rows (rollup rows and block
	// marks) per event.
	JournalRowsPerEvent float64 `json:"journal_rows_per_event"`
}

func (s Settled) String() string {
	return fmt.Sprintf("after %.1f s: %s; on disk %.1f B/event in trace_items (%d parts), %.1f B/event in all tables; %.3f journal rows per event",
		s.Seconds, s.Work, s.RawBytesPerEvent, s.RawParts, s.AllBytesPerEvent, s.JournalRowsPerEvent)
}

// settle waits until no merge of db has run for a second (at most
// settleMax), then reads what the database holds.
func settle(ctx context.Context, q driver.Conn, db string, n int, p *proc) (*Settled, error) {
	merges := fmt.Sprintf("SELECT count() FROM system.merges WHERE database = '%s'", db)
	var idleSince time.Time
	sctx, cancel := context.WithTimeout(ctx, settleMax)
	err := poll(sctx, p, 200*time.Millisecond, "the merges of "+db+" to end", func() (bool, error) {
		running, err := queryInt(sctx, q, merges)
		if err != nil {
			return false, err
		}
		switch {
		case running > 0:
			idleSince = time.Time{}
		case idleSince.IsZero():
			idleSince = time.Now()
		}
		return !idleSince.IsZero() && time.Since(idleSince) >= time.Second, nil
	})
	cancel()
	if err != nil {
		return nil, err
	}
	var s Settled
	// Journal rows from the parts (metadata): the table is rollup_blocks
	// in releases before the read path.
	var raw, all, parts, journal uint64
	if err := q.QueryRow(ctx, fmt.Sprintf(`SELECT sumIf(bytes_on_disk, table = 'trace_items'), sum(bytes_on_disk), countIf(table = 'trace_items'),
	sumIf(rows, table IN ('rollup_journal', 'rollup_blocks'))
FROM system.parts WHERE active AND database = '%s'`, db)).Scan(&raw, &all, &parts, &journal); err != nil {
		return nil, fmt.Errorf("bench: read system.parts: %w", err)
	}
	s.RawBytesPerEvent = float64(raw) / float64(n)
	s.AllBytesPerEvent = float64(all) / float64(n)
	s.RawParts = int64(parts)
	s.JournalRowsPerEvent = float64(journal) / float64(n)
	return &s, nil
}

// Check is one target with its verdict.
type Check struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Limit string  `json:"limit"`
	Pass  bool    `json:"pass"`
}

// Report is the result of Run.
type Report struct {
	Started    time.Time `json:"started"`
	Machine    Machine   `json:"machine"`
	Events     int       `json:"events"`
	Bytes      int64     `json:"bytes"`
	Partitions int       `json:"partitions"`
	Seed       uint64    `json:"seed"`
	Kafka      string    `json:"kafka"`
	ClickHouse string    `json:"clickhouse"`
	// ProduceEventsPerSec is how fast the workload was loaded into Kafka.
	ProduceEventsPerSec float64 `json:"produce_events_per_sec"`
	Processor           Side    `json:"processor"`
	Reference           Side    `json:"reference"`
	// ClickHouseCPUSecPerMillion is -1 when the server is not ours.
	ClickHouseCPUSecPerMillion float64 `json:"clickhouse_cpu_sec_per_million"`
	ClickHouseWork             *Work   `json:"clickhouse_work,omitempty"`
	// Settled is the throughput phase's server cost once the merges it
	// caused have ended, and what it left on disk.
	Settled *Settled `json:"settled,omitempty"`
	// FirstRowSeconds is when the first rows were queryable, from the
	// processor's start (start, group join, the first blocks filling): a
	// cost a small -n does not amortise.
	FirstRowSeconds float64 `json:"first_row_seconds"`
	RowsQueryable   int64   `json:"rows_queryable"`
	// RowsStoredTwice are raw rows stored again when all were queryable
	// (they collapse in merges; reads count each once).
	RowsStoredTwice  int64    `json:"rows_stored_twice,omitempty"`
	RollupRequests   int64    `json:"rollup_requests"`
	EventsRatio      float64  `json:"events_per_sec_ratio"`
	CPUPerEventRatio float64  `json:"cpu_per_event_ratio"`
	Latency          *Latency `json:"latency,omitempty"`
	Checks           []Check  `json:"checks"`
	ProcessArgs      []string `json:"process_args,omitempty"`
}

// Run performs the benchmark. Everything it starts (servers, subprocesses)
// is stopped before it returns; the topic and database it made are left on
// servers it did not start.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.prepare(); err != nil {
		return nil, err
	}
	log := cfg.Log
	rep := &Report{Started: time.Now().UTC(), Machine: thisMachine(), Events: cfg.N, Partitions: cfg.Partitions, Seed: cfg.Seed,
		ProcessArgs: cfg.ProcessArgs, ClickHouseCPUSecPerMillion: -1}

	work, err := os.MkdirTemp("", "taillight-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(work)

	brokers := cfg.Brokers
	rep.Kafka = "external " + strings.Join(brokers, ",")
	if len(brokers) == 0 {
		log.Info("starting a local Apache Kafka", "version", devenv.KafkaVersion)
		k, err := devenv.StartKafka(ctx, devenv.KafkaConfig{Brokers: 1, Dir: work, Log: log,
			// Big segments: a million records would roll a thousand 1 MiB ones.
			ExtraProps: map[string]string{"log.segment.bytes": "268435456"}})
		if err != nil {
			return nil, fmt.Errorf("bench: start kafka: %w (or measure against a running cluster with -kafka.brokers)", err)
		}
		defer k.Close()
		brokers = k.Brokers()
		rep.Kafka = "local Apache Kafka " + devenv.KafkaVersion + ", 1 broker"
	}
	chAddr, chPID := cfg.ClickHouse, 0
	rep.ClickHouse = "external " + chAddr
	if chAddr == "" {
		ch, err := privateClickHouse(ctx, filepath.Join(work, "clickhouse"), log)
		if err != nil {
			return nil, err
		}
		defer ch.Close()
		chAddr, chPID = ch.Addr(), ch.PID()
		rep.ClickHouse = "private local ClickHouse"
	}

	id := randomID()
	topic, group, db := "bench-"+id, "bench-"+id, "bench_"+id
	chCfg := chsink.DefaultConfig()
	chCfg.Addrs, chCfg.Database = []string{chAddr}, db
	exe := cmp.Or(cfg.ProcessExe, cfg.Exe)
	if out, err := exec.CommandContext(ctx, exe, "migrate", "-clickhouse.addr", chAddr, "-clickhouse.database", db).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bench: migrate clickhouse: %w: %s", err, tail(string(out)))
	}
	if v, err := serverVersion(ctx, chCfg); err == nil {
		rep.ClickHouse += " " + v
	}
	q, err := openQuery(chCfg)
	if err != nil {
		return nil, err
	}
	defer q.Close()

	pcfg := producer.DefaultConfig()
	pcfg.Kafka.Brokers, pcfg.Topic = brokers, topic
	pub, err := producer.New(pcfg, log, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: producer: %w", err)
	}
	defer pub.Close(context.WithoutCancel(ctx))
	if err := createTopic(ctx, pub.Client(), topic, cfg.Partitions); err != nil {
		return nil, err
	}
	if err := groupCoordinatorReady(ctx, pub.Client(), group); err != nil {
		return nil, err
	}

	// Load the workload, all of it before any consumer starts.
	log.Info("producing the workload", "events", cfg.N, "topic", topic)
	t0 := time.Now()
	rep.Bytes, err = produceAll(ctx, pub, topic, cfg.Seed, cfg.N)
	if err != nil {
		return nil, err
	}
	rep.ProduceEventsPerSec = float64(cfg.N) / time.Since(t0).Seconds()

	// The reference consumer first, over exactly the records just loaded.
	log.Info("running the decode-only reference consumer")
	rep.Reference, err = runRef(ctx, cfg, brokers, topic, rep.Bytes)
	if err != nil {
		return nil, err
	}

	// The processor, from the earliest offset with a fresh group.
	log.Info("running the processor until every row is queryable")
	args := []string{"process"}
	if cfg.CPUProfile != "" || cfg.MemProfile != "" {
		args = []string{"bench-process"}
		if cfg.CPUProfile != "" {
			args = append(args, "-cpuprofile", cfg.CPUProfile)
		}
		if cfg.MemProfile != "" {
			args = append(args, "-memprofile", cfg.MemProfile)
		}
	}
	args = append(args, "-kafka.brokers", strings.Join(brokers, ","), "-kafka.topic", topic,
		"-kafka.group", group, "-clickhouse.addr", chAddr, "-clickhouse.database", db,
		"-listen.metrics", "127.0.0.1:0", "-log.level", "warn")
	args = append(args, cfg.ProcessArgs...)
	proc, err := startProc(exe, args, filepath.Join(work, "process.log"))
	if err != nil {
		return nil, err
	}
	defer proc.stop()

	var chCPU0 time.Duration
	if chPID != 0 {
		if chCPU0, err = ProcCPU(chPID); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	work0, err := serverWork(ctx, q)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	rows, twice, firstRow, err := waitRows(pctx, q, db, int64(cfg.N), proc)
	cancel()
	elapsed := time.Since(proc.started)
	if err != nil {
		return nil, err
	}
	cpu, err := ProcCPU(proc.pid())
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	rss, err := ProcPeakRSS(proc.pid())
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if chPID != 0 {
		chCPU, err := ProcCPU(chPID)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		rep.ClickHouseCPUSecPerMillion = (chCPU - chCPU0).Seconds() * 1e6 / float64(cfg.N)
	}
	work1, err := serverWork(ctx, q)
	if err != nil {
		return nil, err
	}
	rep.ClickHouseWork = work1.sub(work0)
	rep.RowsQueryable, rep.RowsStoredTwice = rows, twice
	rep.Processor = side(elapsed, cpu, rss, cfg.N, rep.Bytes)
	rep.FirstRowSeconds = firstRow.Sub(proc.started).Seconds()

	// Every count also in the rollups: the dashboards' figures are complete.
	rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	rep.RollupRequests, err = waitRollups(rctx, q, db, int64(cfg.N), proc)
	cancel()
	if err != nil {
		return nil, err
	}
	rep.Settled, err = settle(ctx, q, db, cfg.N, proc)
	if err != nil {
		return nil, err
	}
	rep.Settled.Seconds = time.Since(proc.started).Seconds()
	rep.Settled.CPUSecPerMillion = -1
	if chPID != 0 {
		chCPU, err := ProcCPU(chPID)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		rep.Settled.CPUSecPerMillion = (chCPU - chCPU0).Seconds() * 1e6 / float64(cfg.N)
	}
	work2, err := serverWork(ctx, q)
	if err != nil {
		return nil, err
	}
	rep.Settled.Work = work2.sub(work0)
	rep.EventsRatio = rep.Processor.EventsPerSec / rep.Reference.EventsPerSec
	rep.CPUPerEventRatio = rep.Processor.CPUSecPerMillion / rep.Reference.CPUSecPerMillion

	if cfg.LatencyDuration > 0 {
		rate := cfg.LatencyRate
		if rate == 0 {
			rate = rep.Processor.EventsPerSec / 2
		}
		log.Info("measuring event-to-queryable latency", "rate", rate, "for", cfg.LatencyDuration)
		lctx, cancel := context.WithTimeout(ctx, cfg.LatencyDuration+cfg.Timeout)
		rep.Latency, err = measureLatency(lctx, pub, q, db, topic, cfg.Partitions, cfg.Seed+1, rate, cfg.LatencyDuration, proc, chPID)
		cancel()
		if err != nil {
			return nil, err
		}
		// The target is about full speed (the throughput phase); this is
		// the peak over both phases. Two reads of VmHWM are not strictly
		// monotonic (the kernel's RSS counters are folded in lazily; a CI
		// run saw the second a little lower), so the first counts too.
		rss2, err := ProcPeakRSS(proc.pid())
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		rep.Latency.PeakRSSMiB = float64(max(rss, rss2)) / (1 << 20)
	}
	if err := proc.stop(); err != nil {
		return nil, err
	}
	rep.Machine.LoadEnd = load1()
	rep.Checks = checks(rep)
	return rep, nil
}

func side(elapsed, cpu time.Duration, rss int64, n int, bytes int64) Side {
	s := elapsed.Seconds()
	return Side{
		Seconds:          s,
		EventsPerSec:     float64(n) / s,
		MBPerSec:         float64(bytes) / 1e6 / s,
		CPUSeconds:       cpu.Seconds(),
		CPUSecPerMillion: cpu.Seconds() * 1e6 / float64(n),
		PeakRSSMiB:       float64(rss) / (1 << 20),
	}
}

func checks(r *Report) []Check {
	cs := []Check{
		{"events/s ratio to reference", r.EventsRatio, fmt.Sprintf("≥ %.2f", TargetEventsRatio), r.EventsRatio >= TargetEventsRatio},
		{"CPU per event ratio to reference", r.CPUPerEventRatio, fmt.Sprintf("≤ %.1f", TargetCPURatio), r.CPUPerEventRatio <= TargetCPURatio},
		{"processor peak RSS (MiB)", r.Processor.PeakRSSMiB, fmt.Sprintf("≤ %d", TargetPeakRSS>>20), r.Processor.PeakRSSMiB <= TargetPeakRSS>>20},
	}
	if r.Latency != nil {
		cs = append(cs, Check{"p99 event-to-queryable (ms)", r.Latency.P99Ms, fmt.Sprintf("≤ %d", TargetP99.Milliseconds()),
			r.Latency.P99Ms <= float64(TargetP99.Milliseconds())})
	}
	return cs
}

func randomID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// privateClickHouse starts a ClickHouse for a run in dir ("": a temporary
// directory its Close removes).
func privateClickHouse(ctx context.Context, dir string, log *slog.Logger) (*devenv.ClickHouse, error) {
	log.Info("starting a private ClickHouse")
	ch, err := devenv.StartClickHouse(ctx, devenv.ClickHouseConfig{Dir: dir, Log: log})
	if err != nil {
		return nil, fmt.Errorf("bench: start clickhouse: %w (or measure against a running server with -clickhouse.addr)", err)
	}
	return ch, nil
}

func serverVersion(ctx context.Context, cfg chsink.Config) (string, error) {
	w, err := chsink.New(ctx, cfg, nil, nil)
	if err != nil {
		return "", err
	}
	defer w.Close()
	return w.ServerVersion(ctx)
}

func openQuery(cfg chsink.Config) (driver.Conn, error) {
	o, err := cfg.ClientOptions("")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	c, err := clickhouse.Open(o)
	if err != nil {
		return nil, fmt.Errorf("bench: open clickhouse: %w", err)
	}
	return c, nil
}

func createTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int) error {
	adm := kadm.NewClient(cl)
	res, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return fmt.Errorf("bench: create topic %s: %w", topic, err)
	}
	return nil
}

// groupCoordinatorReady waits until the broker coordinating group can
// describe it. A fresh Kafka creates its offsets topic on the first group
// request, and the first JoinGroup then waits out a retry backoff: a cost
// of a new cluster, not of the processor, which a running one has paid.
func groupCoordinatorReady(ctx context.Context, cl *kgo.Client, group string) error {
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		gs, err := adm.DescribeGroups(ctx, group)
		if err == nil {
			err = gs.Error()
		}
		// A new group does not exist yet: the coordinator said so.
		if err == nil || errors.Is(err, kerr.GroupIDNotFound) {
			return nil
		}
		if !kerr.IsRetriable(err) && ctx.Err() == nil {
			return fmt.Errorf("bench: describe group %s: %w", group, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: the coordinator of group %s is not ready: %w", group, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// produceAll loads n generated items, keyed by script as `taillight
// generate` does, and returns their total size once all are acknowledged.
func produceAll(ctx context.Context, pub *producer.Publisher, topic string, seed uint64, n int) (int64, error) {
	gen, err := producer.NewGenerator(producer.GenConfig{Seed: seed, Start: time.Now().Add(-5 * time.Minute),
		Step: max(5*time.Minute/time.Duration(max(n, 1)), time.Nanosecond)})
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	cl := pub.Client()
	var mu sync.Mutex
	var first error
	var total int64
	for range n {
		b, tr := gen.Next(nil)
		total += int64(len(b))
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(tr.Script), Value: b}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				first = cmpErr(first, err)
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, fmt.Errorf("bench: produce: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if first != nil {
		return 0, fmt.Errorf("bench: produce: %w", first)
	}
	return total, nil
}

// runRef runs `taillight bench-ref` and measures it from start to exit.
func runRef(ctx context.Context, cfg Config, brokers []string, topic string, nbytes int64) (Side, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, cfg.Exe, "bench-ref", "-kafka.brokers", strings.Join(brokers, ","),
		"-kafka.topic", topic, "-n", fmt.Sprint(cfg.N))
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return Side{}, fmt.Errorf("bench: reference consumer: %w: %s", err, tail(errb.String()))
	}
	elapsed := time.Since(start)
	var res RefResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return Side{}, fmt.Errorf("bench: reference consumer output %q: %w", tail(out.String()), err)
	}
	if res.Records != int64(cfg.N) || res.Bytes != nbytes {
		return Side{}, fmt.Errorf("bench: reference consumer read %d records, %d bytes; want %d, %d", res.Records, res.Bytes, cfg.N, nbytes)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return Side{}, errors.New("bench: no resource usage of the reference consumer")
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return side(elapsed, cpu, ru.Maxrss<<10, cfg.N, nbytes), nil
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// proc is the processor subprocess.
type proc struct {
	cmd     *exec.Cmd
	logPath string
	started time.Time
	done    chan struct{}
	err     error
	once    sync.Once
	stopErr error
}

func startProc(exe string, args []string, logPath string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("bench: start %s: %w", exe, err)
	}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited returns an error naming the log when the process has ended.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("bench: the processor exited early (%v): %s", p.err, p.logTail())
	default:
		return nil
	}
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	return tail(string(b))
}

// stop sends SIGTERM (the processor flushes and leaves its group) and waits,
// killing it after a minute.
func (p *proc) stop() error {
	p.once.Do(func() {
		select {
		case <-p.done:
			p.stopErr = fmt.Errorf("bench: the processor exited by itself (%v): %s", p.err, p.logTail())
			return
		default:
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			if p.err != nil {
				p.stopErr = fmt.Errorf("bench: the processor failed to stop cleanly (%v): %s", p.err, p.logTail())
			}
		case <-time.After(time.Minute):
			p.cmd.Process.Kill()
			<-p.done
			p.stopErr = fmt.Errorf("bench: the processor did not stop within a minute of SIGTERM: %s", p.logTail())
		}
	})
	return p.stopErr
}

func queryInt(ctx context.Context, q driver.Conn, query string) (int64, error) {
	var v uint64
	if err := q.QueryRow(ctx, query).Scan(&v); err != nil {
		return 0, err
	}
	return int64(v), nil
}

// poll runs f every interval until it reports done, the process dies or ctx
// ends.
func poll(ctx context.Context, p *proc, every time.Duration, what string, f func() (bool, error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	var last error
	for {
		done, err := f()
		if done {
			return nil
		}
		if err != nil {
			last = err
		}
		if err := p.exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: waiting for %s: %w (last error: %v; processor log: %s)", what, ctx.Err(), last, p.logTail())
		case <-t.C:
		}
	}
}

// waitRows polls until want rows are queryable and returns the count, the
// raw rows stored more than once (a packet written again; the copies
// collapse in merges and every read counts them once) and when the first
// rows were (startup, group join and the first block's linger are before
// it).
func waitRows(ctx context.Context, q driver.Conn, db string, want int64, p *proc) (int64, int64, time.Time, error) {
	var got, stored int64
	var first time.Time
	// The rows of the active parts (metadata) until they are all there,
	// then the distinct coordinates: on 18.16 a count reads a column of
	// every row, so polling it 10 times a second loaded the server being
	// measured. The database holds one topic.
	query := fmt.Sprintf("SELECT uniqExact(kafka_partition, kafka_offset) FROM %s.trace_items", db)
	err := poll(ctx, p, 100*time.Millisecond, fmt.Sprintf("%d rows in %s.trace_items", want, db), func() (bool, error) {
		n, err := storedRows(ctx, q, db)
		if err != nil {
			return false, err
		}
		stored = n
		if n >= want {
			n, err = queryInt(ctx, q, query)
			if err != nil {
				return false, err
			}
		}
		got = min(n, want)
		if n > 0 && first.IsZero() {
			first = time.Now()
		}
		if n > want {
			return false, fmt.Errorf("%d distinct rows, more than the %d produced", n, want)
		}
		return n == want, nil
	})
	if err == nil && got != want {
		err = fmt.Errorf("bench: %d rows queryable, want %d", got, want)
	}
	return got, stored - got, first, err
}

func waitRollups(ctx context.Context, q driver.Conn, db string, want int64, p *proc) (int64, error) {
	var got int64
	query := fmt.Sprintf("SELECT sum(requests) FROM %s.script_outcomes_1m", db)
	err := poll(ctx, p, 200*time.Millisecond, fmt.Sprintf("%d requests in %s.script_outcomes_1m", want, db), func() (bool, error) {
		n, err := queryInt(ctx, q, query)
		if err != nil {
			return false, err
		}
		got = n
		return n == want, nil
	})
	return got, err
}

// WriteTable prints r as a human-readable table.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "taillight bench: %d events (%.0f B/event, seed %d) on %d partitions; %s; %s\n",
		r.Events, float64(r.Bytes)/float64(max(r.Events, 1)), r.Seed, r.Partitions, r.Kafka, r.ClickHouse)
	fmt.Fprintf(w, "machine: %d CPUs (%s), %d MiB; load %.1f → %.1f; workload loaded at %.0f events/s\n\n",
		r.Machine.NProc, r.Machine.CPUModel, r.Machine.MemoryMiB, r.Machine.LoadStart, r.Machine.LoadEnd, r.ProduceEventsPerSec)
	fmt.Fprintf(w, "%-34s %14s %14s %8s\n", "", "processor", "reference", "ratio")
	row := func(name string, a, b float64, format string) {
		ratio := "-"
		if b > 0 {
			ratio = fmt.Sprintf("%.2f", a/b)
		}
		fmt.Fprintf(w, "%-34s %14s %14s %8s\n", name, fmt.Sprintf(format, a), fmt.Sprintf(format, b), ratio)
	}
	row("seconds", r.Processor.Seconds, r.Reference.Seconds, "%.2f")
	row("events/s", r.Processor.EventsPerSec, r.Reference.EventsPerSec, "%.0f")
	row("MB/s", r.Processor.MBPerSec, r.Reference.MBPerSec, "%.2f")
	row("CPU-seconds per million events", r.Processor.CPUSecPerMillion, r.Reference.CPUSecPerMillion, "%.1f")
	row("peak RSS (MiB)", r.Processor.PeakRSSMiB, r.Reference.PeakRSSMiB, "%.1f")
	if r.ClickHouseCPUSecPerMillion >= 0 {
		fmt.Fprintf(w, "%-34s %14.1f\n", "ClickHouse CPU-s per million", r.ClickHouseCPUSecPerMillion)
	}
	fmt.Fprintf(w, "%-34s %14d (rollup requests %d; first rows after %.2f s)\n", "rows queryable", r.RowsQueryable, r.RollupRequests, r.FirstRowSeconds)
	if r.RowsStoredTwice > 0 {
		fmt.Fprintf(w, "%-34s %14d (collapse in merges; reads count each once)\n", "raw rows stored twice", r.RowsStoredTwice)
	}
	if r.ClickHouseWork != nil {
		fmt.Fprintf(w, "ClickHouse until then: %s\n", r.ClickHouseWork)
	}
	if st := r.Settled; st != nil {
		if st.CPUSecPerMillion >= 0 {
			fmt.Fprintf(w, "%-34s %14.1f\n", "ClickHouse CPU-s per million, merges settled", st.CPUSecPerMillion)
		}
		fmt.Fprintf(w, "settled %s\n", st)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "\nlatency at %.0f events/s offered (%.0f achieved, %d events, resolution %.0f ms): p50 %.0f ms, p99 %.0f ms, max %.0f ms; peak RSS by then %.1f MiB\n",
			l.OfferedRate, l.AchievedRate, l.Events, l.ResolutionMs, l.P50Ms, l.P99Ms, l.MaxMs, l.PeakRSSMiB)
		fmt.Fprintf(w, "during it, CPU-s per million events: processor %.1f", l.ProcessorCPUSecPerMillion)
		if l.ClickHouseCPUSecPerMillion >= 0 {
			fmt.Fprintf(w, ", ClickHouse %.1f", l.ClickHouseCPUSecPerMillion)
		}
		fmt.Fprintln(w)
		if l.ClickHouseWork != nil {
			fmt.Fprintf(w, "ClickHouse during it: %s\n", l.ClickHouseWork)
		}
	}
	fmt.Fprintf(w, "\n%-34s %10s %8s %s\n", "target", "value", "limit", "")
	for _, c := range r.Checks {
		v := "FAIL"
		if c.Pass {
			v = "pass"
		}
		fmt.Fprintf(w, "%-34s %10.2f %8s %s\n", c.Name, c.Value, c.Limit, v)
	}
}
