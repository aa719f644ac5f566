package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taillight/taillight/internal/backoff"
	"github.com/taillight/taillight/producer"
)

func init() {
	register(&command{
		name:    "generate",
		summary: "synthetic TraceItems to Kafka, NDJSON on stdout, or an ingest URL",
		help:    generateHelp,
		flags:   func() commandFlags { return &generateFlags{kafka: producer.DefaultConfig()} },
	})
}

type generateFlags struct {
	kafka   producer.Config
	n       int
	seed    uint64
	rate    float64
	out     string
	start   string
	scripts int
	batch   int
	token   string
	gzip    bool
}

func (f *generateFlags) register(c *cli) {
	f.kafka.RegisterFlags(c.fs, "") // validated only for -out kafka
	c.fs.IntVar(&f.n, "n", 10000, "number of events (0 = until interrupted)")
	c.fs.Uint64Var(&f.seed, "seed", 1, "random seed: the same seed and -start give byte-identical events")
	c.fs.Float64Var(&f.rate, "rate", 0, "events per second (0 = as fast as the output takes them)")
	c.fs.StringVar(&f.out, "out", "kafka", "where to: kafka, ndjson (stdout) or an ingest URL http(s)://host/v1/traces")
	c.fs.StringVar(&f.start, "start", "", "event time of the first event, RFC 3339 (default now; with -rate 0 the events span the 5 minutes before it)")
	c.fs.IntVar(&f.scripts, "scripts", 24, "number of distinct Worker scripts")
	c.fs.IntVar(&f.batch, "batch", 100, "events per POST when -out is a URL")
	c.fs.StringVar(&f.token, "ingest.token", "", "bearer token for an ingest URL (prefer TAILLIGHT_INGEST_TOKEN)")
	c.fs.BoolVar(&f.gzip, "gzip", false, "gzip each POST body when -out is a URL")
}

const generateHelp = `Usage: taillight generate [flags]

Realistic synthetic Worker invocations (many scripts, routes with IDs, colos,
outcomes, logs, exceptions, planted secrets for redaction), deterministic per
-seed and -start.

Examples:
  taillight generate -kafka.brokers 127.0.0.1:9092 -n 100000 -rate 2000
  taillight generate -out ndjson -n 10 -seed 7 -start 2026-01-01T00:00:00Z
  TAILLIGHT_INGEST_TOKEN=... taillight generate -out http://127.0.0.1:8080/v1/traces -batch 50

Flags:
`

func (f *generateFlags) run(ctx context.Context, log *slog.Logger, s stdio) int {
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(s.err, "taillight generate: "+format+"\n", a...)
		return exitUsage
	}
	if f.n < 0 || f.rate < 0 || f.batch <= 0 || f.scripts <= 0 {
		return usageErr("-n and -rate must not be negative, -batch and -scripts must be positive")
	}
	start := time.Now()
	if f.start != "" {
		var err error
		if start, err = time.Parse(time.RFC3339Nano, f.start); err != nil {
			return usageErr("-start: %v", err)
		}
	}
	gc := producer.GenConfig{Seed: f.seed, Start: start, Step: time.Millisecond, Scripts: f.scripts}
	switch {
	case f.rate > 0:
		gc.Step = max(time.Duration(float64(time.Second)/f.rate), time.Nanosecond)
	case f.n > 0:
		gc.Start = start.Add(-5 * time.Minute)
		gc.Step = max(5*time.Minute/time.Duration(f.n), time.Nanosecond)
	default: // endless and unpaced: about the clock at ~100k events/s
		gc.Step = 10 * time.Microsecond
	}
	gen, err := producer.NewGenerator(gc)
	if err != nil {
		return usageErr("%v", err)
	}

	var sink genSink
	switch {
	case f.out == "kafka":
		if err := f.kafka.Validate(); err != nil {
			return usageErr("%v", err)
		}
		pub, err := producer.New(f.kafka, log, nil)
		if err != nil {
			return usageErr("%v", err)
		}
		sink = &kafkaSink{pub: pub}
	case f.out == "ndjson":
		sink = &ndjsonSink{w: bufio.NewWriterSize(s.out, 256<<10)}
	case strings.HasPrefix(f.out, "http://") || strings.HasPrefix(f.out, "https://"):
		if f.token == "" {
			return usageErr("-ingest.token (or TAILLIGHT_INGEST_TOKEN) is required for an ingest URL")
		}
		sink = &httpSink{url: f.out, token: f.token, batch: f.batch, gzip: f.gzip, log: log,
			client: &http.Client{Timeout: time.Minute}}
	default:
		return usageErr("-out %q: want kafka, ndjson or an http(s) URL", f.out)
	}

	st := &genStats{start: time.Now()}
	stopProgress := startProgress(s.err, st)
	err = generateLoop(ctx, gen, sink, f.n, f.rate, st)
	if cerr := sink.close(context.WithoutCancel(ctx)); err == nil {
		err = cerr
	}
	stopProgress()
	el := time.Since(st.start)
	events, bytes := st.events.Load(), st.bytes.Load()
	fmt.Fprintf(s.err, "generated %d events, %s (%d B/event) in %s: %.0f events/s, %.2f MB/s → %s\n",
		events, humanBytes(bytes), bytes/max(events, 1), el.Round(time.Millisecond),
		float64(events)/el.Seconds(), float64(bytes)/1e6/el.Seconds(), f.out)
	if err != nil && !(errors.Is(err, context.Canceled) && f.n == 0) {
		fmt.Fprintf(s.err, "taillight generate: %v\n", err)
		return exitError
	}
	return exitOK
}

// generateLoop produces n events (0 = until ctx ends), paced at rate/s.
func generateLoop(ctx context.Context, gen *producer.Generator, sink genSink, n int, rate float64, st *genStats) error {
	var timer *time.Timer
	for i := 0; n == 0 || i < n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if rate > 0 {
			due := st.start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-timer.C:
				}
			}
		}
		b, tr := gen.Next(nil)
		if err := sink.write(ctx, b, tr.Script); err != nil {
			return err
		}
		st.events.Add(1)
		st.bytes.Add(int64(len(b)))
	}
	return nil
}

type genStats struct {
	start  time.Time
	events atomic.Int64
	bytes  atomic.Int64
}

// startProgress redraws one status line every 250ms when w is a terminal.
func startProgress(w io.Writer, st *genStats) (stop func()) {
	f, ok := w.(*os.File)
	if !ok {
		return func() {}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(f, "\r\033[K")
				return
			case <-t.C:
				el := time.Since(st.start).Seconds()
				ev := st.events.Load()
				fmt.Fprintf(f, "\r\033[K%d events  %s  %.0f events/s", ev, humanBytes(st.bytes.Load()), float64(ev)/el)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// genSink is one output. write takes ownership of item.
type genSink interface {
	write(ctx context.Context, item []byte, script string) error
	close(ctx context.Context) error
}

type ndjsonSink struct{ w *bufio.Writer }

func (s *ndjsonSink) write(_ context.Context, item []byte, _ string) error {
	s.w.Write(item)
	if err := s.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("write NDJSON: %w", err)
	}
	return nil
}

func (s *ndjsonSink) close(context.Context) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write NDJSON: %w", err)
	}
	return nil
}

// kafkaSink publishes asynchronously; the Publisher's bounded buffer is the
// backpressure. The first failed record stops the run.
type kafkaSink struct {
	pub   *producer.Publisher
	mu    sync.Mutex
	first error
}

func (s *kafkaSink) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

func (s *kafkaSink) write(ctx context.Context, item []byte, script string) error {
	if err := s.err(); err != nil {
		return err
	}
	var key []byte
	if script != "" {
		key = []byte(script)
	}
	s.pub.PublishRawAsync(ctx, producer.RawItem{Key: key, Value: item}, func(err error) {
		if err != nil {
			s.mu.Lock()
			if s.first == nil {
				s.first = fmt.Errorf("publish to Kafka: %w", err)
			}
			s.mu.Unlock()
		}
	})
	return nil
}

func (s *kafkaSink) close(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := s.pub.Close(cctx)
	if e := s.err(); e != nil {
		return e
	}
	return err
}

// httpSink POSTs JSON arrays of up to batch items to an ingest URL, retrying
// 503/5xx and network errors with backoff (Retry-After when given).
type httpSink struct {
	url, token string
	batch      int
	gzip       bool
	log        *slog.Logger
	client     *http.Client
	items      [][]byte
}

func (s *httpSink) write(ctx context.Context, item []byte, _ string) error {
	s.items = append(s.items, item)
	if len(s.items) < s.batch {
		return nil
	}
	return s.flush(ctx)
}

func (s *httpSink) close(ctx context.Context) error {
	if len(s.items) == 0 {
		return nil
	}
	return s.flush(ctx)
}

func (s *httpSink) flush(ctx context.Context) error {
	var body bytes.Buffer
	var w io.Writer = &body
	var zw *gzip.Writer
	if s.gzip {
		zw = gzip.NewWriter(&body)
		w = zw
	}
	w.Write([]byte{'['})
	for i, it := range s.items {
		if i > 0 {
			w.Write([]byte{','})
		}
		w.Write(it)
	}
	w.Write([]byte{']'})
	if zw != nil {
		zw.Close()
	}
	n := len(s.items)
	s.items = s.items[:0]
	attempts := 0
	return backoff.Backoff{Min: 250 * time.Millisecond, Max: 10 * time.Second}.Retry(ctx, func(ctx context.Context) error {
		attempts++
		retryAfter, err := s.post(ctx, body.Bytes(), n)
		switch {
		case err == nil:
			return nil
		case retryAfter < 0 || attempts == 6:
			return backoff.Stop(err)
		}
		return backoff.After(err, retryAfter)
	}, func(attempt int, err error) {
		s.log.Warn("ingest POST failed; retrying", "err", err, "attempt", attempt)
	})
}

// post sends one body. A negative retryAfter means the error is final.
func (s *httpSink) post(ctx context.Context, body []byte, n int) (retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return -1, fmt.Errorf("POST %s: %w", s.url, err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	if s.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	res, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		return 0, fmt.Errorf("POST %s: %w", s.url, err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	switch {
	case res.StatusCode == http.StatusAccepted:
		var a struct {
			Accepted int `json:"accepted"`
		}
		if err := json.Unmarshal(msg, &a); err != nil || a.Accepted != n {
			return -1, fmt.Errorf("POST %s: answer %q; want accepted %d", s.url, bytes.TrimSpace(msg), n)
		}
		return 0, nil
	case res.StatusCode >= 500:
		ra, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		return time.Duration(ra) * time.Second, fmt.Errorf("POST %s: %s: %s", s.url, res.Status, bytes.TrimSpace(msg))
	}
	return -1, fmt.Errorf("POST %s: %s: %s", s.url, res.Status, bytes.TrimSpace(msg))
}
