package producer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taillight/taillight/internal/promreg"
	"github.com/taillight/taillight/schemas"
)

// IngestPath is where Tail Workers POST their events.
const IngestPath = "/v1/traces"

// WorkerIDParam (query parameter) and WorkerIDHeader name a Dynamic Worker
// id that ingest applies to every item of a POST (schemas.TraceItem.WorkerID).
const (
	WorkerIDParam  = "workerId"
	WorkerIDHeader = "Taillight-Worker-Id"
)

// maxTokensFileBytes bounds the tokens file read on every reload.
const maxTokensFileBytes = 1 << 20

// IngestConfig configures the ingest endpoint.
type IngestConfig struct {
	// Tokens are accepted bearer tokens, besides those in TokensFile.
	Tokens []string
	// TokensFile holds one token per line (blank lines and lines starting
	// with # are ignored). It is re-read at most every TokensReload while
	// requests arrive, so tokens rotate without a restart. A reload that
	// fails or finds no token keeps the previous set.
	TokensFile string
	// TokensReload is the file re-read interval. Default 5s.
	TokensReload time.Duration
	// MaxBodyBytes bounds a request body, both as sent and after gzip
	// decompression; beyond it the answer is 413. Default 8 MiB.
	MaxBodyBytes int64
	// MaxItems bounds the TraceItems of one request (413 beyond). Default 1000.
	MaxItems int
	// PublishTimeout bounds the wait for Kafka's acks; when it passes the
	// answer is 503. Default 10s.
	PublishTimeout time.Duration
	// RetryAfter is the Retry-After sent with a 503 or a 429. Default 5s.
	RetryAfter time.Duration
	// MaxInflightBytes bounds the request bodies held at once across all
	// requests (read, decoded or waiting for Kafka's acks); a request that
	// would pass it is answered 429 with Retry-After. Default 256 MiB; it
	// must hold one body of MaxBodyBytes.
	MaxInflightBytes int64
	// Limits are the value ranges every item must respect (400 otherwise).
	// Default schemas.DefaultLimits.
	Limits schemas.Limits
}

// DefaultIngestConfig returns the documented defaults with no tokens.
func DefaultIngestConfig() IngestConfig {
	return IngestConfig{
		TokensReload:     5 * time.Second,
		MaxBodyBytes:     8 << 20,
		MaxItems:         1000,
		PublishTimeout:   10 * time.Second,
		RetryAfter:       5 * time.Second,
		MaxInflightBytes: 256 << 20,
		Limits:           schemas.DefaultLimits(),
	}
}

// RegisterFlags registers prefix+"ingest.*" and prefix+"limits.*" flags.
// The values in c are the defaults (start from DefaultIngestConfig); it
// changes no field.
// -ingest.token is best given as TAILLIGHT_INGEST_TOKEN (command lines are
// visible to other users).
func (c *IngestConfig) RegisterFlags(fs *flag.FlagSet, prefix string) {
	p := prefix + "ingest."
	fs.Func(p+"token", "a bearer token accepted by POST "+IngestPath+" (prefer the environment variable)", func(s string) error {
		c.Tokens = []string{s}
		return nil
	})
	fs.StringVar(&c.TokensFile, p+"tokens-file", "", "file with one accepted bearer token per line, re-read when it changes")
	fs.DurationVar(&c.TokensReload, p+"tokens-reload", c.TokensReload, "how often the tokens file is checked for changes")
	fs.Int64Var(&c.MaxBodyBytes, p+"max-body-bytes", c.MaxBodyBytes, "largest request body, before and after gzip decompression")
	fs.IntVar(&c.MaxItems, p+"max-items", c.MaxItems, "most TraceItems in one request")
	fs.DurationVar(&c.PublishTimeout, p+"publish-timeout", c.PublishTimeout, "how long a request waits for Kafka's acks before answering 503")
	fs.DurationVar(&c.RetryAfter, p+"retry-after", c.RetryAfter, "Retry-After sent with 503 and 429")
	fs.Int64Var(&c.MaxInflightBytes, p+"max-inflight-bytes", c.MaxInflightBytes, "request bodies held at once across all requests; past it the answer is 429 with Retry-After")
	c.Limits.RegisterFlags(fs, prefix+"limits.")
}

// Validate reports the first problem with c.
func (c *IngestConfig) Validate() error {
	if len(c.Tokens) == 0 && c.TokensFile == "" {
		return errors.New("ingest: no token configured (-ingest.token, TAILLIGHT_INGEST_TOKEN or -ingest.tokens-file)")
	}
	for _, t := range c.Tokens {
		if strings.TrimSpace(t) == "" {
			return errors.New("ingest: empty token")
		}
	}
	if c.MaxBodyBytes <= 0 || c.MaxItems <= 0 {
		return fmt.Errorf("ingest: max body bytes (%d) and max items (%d) must be positive", c.MaxBodyBytes, c.MaxItems)
	}
	if c.MaxInflightBytes < c.MaxBodyBytes {
		return fmt.Errorf("ingest: max in-flight bytes (%d) must hold at least one body of max body bytes (%d)", c.MaxInflightBytes, c.MaxBodyBytes)
	}
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	if c.PublishTimeout <= 0 || c.RetryAfter <= 0 || (c.TokensFile != "" && c.TokensReload <= 0) {
		return fmt.Errorf("ingest: publish timeout (%s), retry after (%s) and tokens reload (%s) must be positive",
			c.PublishTimeout, c.RetryAfter, c.TokensReload)
	}
	return nil
}

// Ingest is the http.Handler of POST /v1/traces. It is safe for concurrent use.
//
// A request is authorised (bearer token), read whole (bounded), and every
// item decoded and validated before anything is published, so a rejected
// request publishes nothing. Each item is published as the exact JSON bytes
// it was received as (not re-encoded), so fields schemas.TraceItem does not
// know survive. 202 is sent only after Kafka acknowledged every item.
type Ingest struct {
	cfg IngestConfig
	pub *Publisher
	log *slog.Logger

	tokens    atomic.Pointer[[][sha256.Size]byte]
	fileSum   atomic.Pointer[[sha256.Size]byte] // of the last tokens file loaded
	nextCheck atomic.Int64                      // unix nanos of the next file check
	lastWarn  atomic.Int64                      // unix nanos of the last publish-failure log
	inflight  atomic.Int64                      // body bytes held by requests (MaxInflightBytes)

	requests *prometheus.CounterVec
	items    prometheus.Counter
	bytes    prometheus.Counter
	duration prometheus.Histogram
	reloads  *prometheus.CounterVec
	refused  *prometheus.CounterVec
}

// NewIngest validates cfg, loads the tokens file and returns the handler.
// reg may be nil (no metrics); log may be nil.
func NewIngest(cfg IngestConfig, pub *Publisher, log *slog.Logger, reg prometheus.Registerer) (*Ingest, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, errors.New("ingest: nil publisher")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := promreg.With(reg)
	in := &Ingest{
		cfg: cfg, pub: pub, log: log,
		requests: f.CounterVec("taillight_ingest_requests_total", "Ingest requests by HTTP status code.", "code"),
		items:    f.Counter("taillight_ingest_items_total", "TraceItems accepted (acknowledged by Kafka)."),
		bytes:    f.Counter("taillight_ingest_body_bytes_total", "Decompressed request body bytes read."),
		duration: f.Histogram("taillight_ingest_request_duration_seconds", "Time from request to answer, Kafka acks included.", prometheus.ExponentialBuckets(0.001, 2, 15)),
		reloads:  f.CounterVec("taillight_ingest_token_reloads_total", "Tokens file loads that changed the accepted set (ok) or failed (error).", "result"),
		refused:  f.CounterVec("taillight_ingest_refused_total", "Requests refused before publishing, by reason: bad_json, invalid, out_of_range, too_large, busy (in-flight budget).", "reason"),
	}
	f.GaugeFunc("taillight_ingest_inflight_bytes", "Request body bytes held now (bounded by -ingest.max-inflight-bytes).", func() float64 { return float64(in.inflight.Load()) })
	set := digests(cfg.Tokens)
	in.tokens.Store(&set)
	if cfg.TokensFile != "" {
		if err := in.loadTokensFile(); err != nil {
			return nil, err
		}
		in.nextCheck.Store(time.Now().Add(cfg.TokensReload).UnixNano())
	}
	return in, nil
}

func digests(tokens []string) [][sha256.Size]byte {
	out := make([][sha256.Size]byte, 0, len(tokens))
	for _, t := range tokens {
		out = append(out, sha256.Sum256([]byte(t)))
	}
	return out
}

// loadTokensFile replaces the token set with Tokens plus the file's tokens.
// It returns an error (keeping the old set) when the file cannot be read or
// holds no token. Tokens are never logged.
func (in *Ingest) loadTokensFile() error {
	f, err := os.Open(in.cfg.TokensFile)
	if err != nil {
		return fmt.Errorf("ingest: read tokens file: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokensFileBytes+1))
	f.Close()
	if err != nil {
		return fmt.Errorf("ingest: read tokens file: %w", err)
	}
	if len(b) > maxTokensFileBytes {
		return fmt.Errorf("ingest: tokens file %s is larger than %d bytes", in.cfg.TokensFile, maxTokensFileBytes)
	}
	sum := sha256.Sum256(b)
	if old := in.fileSum.Load(); old != nil && *old == sum {
		return nil
	}
	var tokens []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			tokens = append(tokens, line)
		}
	}
	if len(tokens) == 0 {
		return fmt.Errorf("ingest: tokens file %s holds no token", in.cfg.TokensFile)
	}
	set := digests(append(tokens, in.cfg.Tokens...))
	in.tokens.Store(&set)
	in.fileSum.Store(&sum)
	in.reloads.WithLabelValues("ok").Inc()
	in.log.Info("loaded ingest tokens file", "file", in.cfg.TokensFile, "tokens", len(tokens))
	return nil
}

// maybeReload re-reads the tokens file when its interval has passed; one
// request does it, the others go on with the current set.
func (in *Ingest) maybeReload() {
	if in.cfg.TokensFile == "" {
		return
	}
	now := time.Now().UnixNano()
	next := in.nextCheck.Load()
	if now < next || !in.nextCheck.CompareAndSwap(next, now+int64(in.cfg.TokensReload)) {
		return
	}
	if err := in.loadTokensFile(); err != nil {
		in.reloads.WithLabelValues("error").Inc()
		in.log.Warn("tokens file not reloaded; keeping the previous tokens", "err", err)
	}
}

// authorized reports whether r carries an accepted bearer token, comparing
// SHA-256 digests in constant time against every token (no early exit, no
// length leak).
func (in *Ingest) authorized(r *http.Request) bool {
	in.maybeReload()
	h := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(h[len(scheme):])))
	ok := 0
	for _, want := range *in.tokens.Load() {
		ok |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	return ok == 1
}

// errorBody is the JSON body of every 4xx/5xx answer. Index, Line and Offset
// locate a bad item (Line only for NDJSON); Field names the refused value.
type errorBody struct {
	Error  string `json:"error"`
	Index  *int   `json:"index,omitempty"`
	Line   int    `json:"line,omitempty"`
	Offset *int64 `json:"offset,omitempty"`
	Field  string `json:"field,omitempty"`
}

func (in *Ingest) reply(w http.ResponseWriter, code int, body any) {
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
	in.requests.WithLabelValues(strconv.Itoa(code)).Inc()
}

func (in *Ingest) fail(w http.ResponseWriter, code int, format string, args ...any) {
	in.reply(w, code, errorBody{Error: fmt.Sprintf(format, args...)})
}

// acceptedTypes are the request media types. The body format (array,
// object, NDJSON) is read from the bytes whatever the type says, so the
// type only keeps out bodies that say they are something else. text/plain
// is what fetch() sends for a string body without a Content-Type;
// application/x-www-form-urlencoded is what curl --data sends.
var acceptedTypes = map[string]bool{
	"application/json": true, "text/plain": true, "application/x-ndjson": true,
	"application/ndjson": true, "application/jsonl": true, "application/x-jsonlines": true,
	"application/jsonlines": true, "application/x-www-form-urlencoded": true,
}

// ServeHTTP handles POST /v1/traces.
func (in *Ingest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { in.duration.Observe(time.Since(start).Seconds()) }()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		in.fail(w, http.StatusMethodNotAllowed, "method %s not allowed: POST TraceItems", r.Method)
		return
	}
	if !in.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="taillight"`)
		in.fail(w, http.StatusUnauthorized, "missing or invalid bearer token")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !acceptedTypes[mt] {
			in.fail(w, http.StatusUnsupportedMediaType, "content type %q: the body must be JSON (an array of TraceItems, one object or NDJSON), "+
				"sent as application/json, application/x-ndjson, text/plain or application/x-www-form-urlencoded (the format is read from the bytes)", ct)
			return
		}
	}
	workerID, err := postWorkerID(r)
	if err != nil {
		in.fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	body, put, held, code, err := in.readBody(w, r)
	var settled <-chan struct{} // closed once Kafka's client is done with body
	defer func() {
		free := func() {
			if put != nil {
				put()
			}
			in.release(held)
		}
		if settled == nil {
			free()
			return
		}
		select {
		case <-settled:
			free()
		default:
			// Answered on a timeout while the client still holds records
			// aliasing body: they keep their budget, and the buffer is not
			// reused, until each is acknowledged or failed.
			go func() { <-settled; free() }()
		}
	}()
	if err != nil {
		switch code {
		case http.StatusTooManyRequests:
			in.refused.WithLabelValues("busy").Inc()
			w.Header().Set("Retry-After", in.retryAfter())
			// Read and drop the body (bounded, no memory kept) before
			// answering: a server that answers a large body unread resets
			// the connection, and the client sees a broken pipe instead
			// of the 429.
			io.Copy(io.Discard, io.LimitReader(r.Body, in.cfg.MaxBodyBytes))
		case http.StatusRequestEntityTooLarge:
			in.refused.WithLabelValues("too_large").Inc()
		}
		in.fail(w, code, "%v", err)
		return
	}
	in.bytes.Add(float64(len(body)))
	if len(bytes.TrimSpace(body)) == 0 {
		in.fail(w, http.StatusBadRequest, "empty body: send a JSON array of TraceItems or NDJSON")
		return
	}
	items, errBody, code, reserved := in.decode(body, workerID, time.Now())
	held += reserved
	if code == http.StatusTooManyRequests {
		in.refused.WithLabelValues("busy").Inc()
		w.Header().Set("Retry-After", in.retryAfter())
	}
	if errBody != nil {
		in.reply(w, code, errBody)
		return
	}
	// Detached from the request: a client that hangs up should not leave
	// half its batch unsent. PublishTimeout still bounds the wait. The
	// items alias body, released once every record is acknowledged or
	// failed (settled), which may be after a timeout's answer.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), in.cfg.PublishTimeout)
	settled, err = in.pub.publishRaw(ctx, items)
	cancel()
	if err != nil {
		if Reason(err) == "too_large" {
			in.fail(w, http.StatusRequestEntityTooLarge, "Kafka refused an item as too large: %v", err)
			return
		}
		in.warnRateLimited("Kafka did not acknowledge an ingest request; answered 503", err, len(items))
		w.Header().Set("Retry-After", in.retryAfter())
		in.fail(w, http.StatusServiceUnavailable, "Kafka cannot take the items now, retry later: %v", err)
		return
	}
	in.items.Add(float64(len(items)))
	in.reply(w, http.StatusAccepted, struct {
		Accepted int `json:"accepted"`
	}{len(items)})
}

// InflightBytes is the request body bytes held now (see
// IngestConfig.MaxInflightBytes).
func (in *Ingest) InflightBytes() int64 { return in.inflight.Load() }

func (in *Ingest) retryAfter() string {
	return strconv.Itoa(int((in.cfg.RetryAfter + time.Second - 1) / time.Second))
}

// acquire reserves n bytes of the in-flight budget, or reports false
// without reserving when they do not fit.
func (in *Ingest) acquire(n int64) bool {
	for {
		cur := in.inflight.Load()
		if cur+n > in.cfg.MaxInflightBytes {
			return false
		}
		if in.inflight.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

func (in *Ingest) release(n int64) {
	if n > 0 {
		in.inflight.Add(-n)
	}
}

// errBusy is the 429 answer's error.
type errBusy struct{ max int64 }

func (e errBusy) Error() string {
	return fmt.Sprintf("ingest holds %d bytes of requests (-ingest.max-inflight-bytes): retry later", e.max)
}

// readBody reads the whole body, gunzipping it when asked, bounded by
// MaxBodyBytes before and after decompression. Every buffer it allocates
// is reserved from the in-flight budget first (held, to release once the
// request is answered, counts the ones outgrown too: they are garbage
// only once collected); past the budget it stops with 429. put returns
// the buffer to the pool once nothing aliases it.
func (in *Ingest) readBody(w http.ResponseWriter, r *http.Request) (body []byte, put func(), held int64, code int, err error) {
	max := in.cfg.MaxBodyBytes
	if r.ContentLength > max {
		return nil, nil, 0, http.StatusRequestEntityTooLarge, fmt.Errorf("body of %d bytes exceeds %d bytes", r.ContentLength, max)
	}
	var src io.Reader = http.MaxBytesReader(w, r.Body, max)
	gzipped := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gzipped = true
	default:
		return nil, nil, 0, http.StatusUnsupportedMediaType, fmt.Errorf("content encoding %q: send gzip or none", enc)
	}
	// The first buffer holds the whole body when its size is known.
	size := 64 << 10
	if r.ContentLength > 0 && !gzipped {
		size = int(r.ContentLength) + 1 // room to see EOF without growing
	}
	bp := bodyPool.Get().(*[]byte)
	data := (*bp)[:0]
	if cap(data) < size {
		data = nil
	}
	c := max64(int64(cap(data)), int64(size))
	if !in.acquire(c) {
		bodyPool.Put(bp)
		return nil, nil, 0, http.StatusTooManyRequests, errBusy{in.cfg.MaxInflightBytes}
	}
	held = c
	if data == nil {
		data = make([]byte, 0, size)
	}
	put = func() {
		if cap(data) <= maxPooledBody {
			*bp = data[:0]
		}
		bodyPool.Put(bp)
	}
	if gzipped {
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, put, held, statusFor(err), fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		src = io.LimitReader(zr, max+1)
	}
	for {
		if len(data) == cap(data) {
			// Double, reserving the new buffer before it exists.
			grow := min(int64(2*cap(data)), max+1)
			if !in.acquire(grow) {
				return nil, put, held, http.StatusTooManyRequests, errBusy{in.cfg.MaxInflightBytes}
			}
			held += grow
			data = append(make([]byte, 0, grow), data...)
		}
		n, rerr := src.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if int64(len(data)) > max {
			return nil, put, held, http.StatusRequestEntityTooLarge, fmt.Errorf("decompressed body exceeds %d bytes", max)
		}
		if rerr == io.EOF {
			return data, put, held, 0, nil
		}
		if rerr != nil {
			if gzipped && statusFor(rerr) != http.StatusRequestEntityTooLarge {
				return nil, put, held, http.StatusBadRequest, fmt.Errorf("gzip body: %w", rerr)
			}
			return nil, put, held, statusFor(rerr), fmt.Errorf("read body: %w", rerr)
		}
	}
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// maxPooledBody is the largest body buffer kept for reuse: one huge request
// must not pin megabytes per P forever.
const maxPooledBody = 1 << 20

// Request bodies and the 64 KiB read buffers of schemas.NewReader are
// reused. Published items alias the body, so it goes back to the pool only
// once PublishRaw returned.
var (
	bodyPool   = sync.Pool{New: func() any { return new([]byte) }}
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}
)

func statusFor(err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// postWorkerID returns the worker id the request applies to all its items:
// the ?workerId= query parameter or the Taillight-Worker-Id header ("" when
// neither is given). Both may be given only with the same value.
func postWorkerID(r *http.Request) (string, error) {
	q := r.URL.Query()
	qv, inQuery := q[WorkerIDParam]
	hv, inHeader := r.Header[http.CanonicalHeaderKey(WorkerIDHeader)]
	if len(qv) > 1 || len(hv) > 1 {
		return "", fmt.Errorf("more than one %s query parameter or %s header", WorkerIDParam, WorkerIDHeader)
	}
	var id string
	switch {
	case inQuery && inHeader && qv[0] != hv[0]:
		return "", fmt.Errorf("query parameter %s=%q and header %s: %q disagree", WorkerIDParam, qv[0], WorkerIDHeader, hv[0])
	case inQuery:
		id = qv[0]
		if err := schemas.ValidateWorkerID(id); err != nil {
			return "", fmt.Errorf("query parameter %s: %v", WorkerIDParam, err)
		}
	case inHeader:
		id = hv[0]
		if err := schemas.ValidateWorkerID(id); err != nil {
			return "", fmt.Errorf("header %s: %v", WorkerIDHeader, err)
		}
	}
	return id, nil
}

// decode validates every item (the decoder's contract and Limits, at now)
// and returns them ready to publish, or the error answer. Each value is
// the exact bytes received, aliasing body, except that a non-empty
// workerID is added to every item without one (appended as the object's
// last member, so it also wins over a "workerId": null): those values are
// copies in one arena, whose bytes are reserved from the in-flight budget
// (reserved, released with the body). An item whose own workerId differs
// from workerID is refused: a POST names one Worker.
func (in *Ingest) decode(body []byte, workerID string, now time.Time) (items []RawItem, errBody any, code int, reserved int64) {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(bytes.NewReader(body))
	defer func() { br.Reset(nil); readerPool.Put(br) }()
	rd := schemas.NewReader(br) // uses br itself: it is large enough
	rd.Check = func(t *schemas.TraceItem) error { return in.cfg.Limits.Check(t, now) }
	var arena []byte
	if workerID != "" {
		// Room for every item with the workerId appended (an estimate: an
		// escaped "outcome" key is not counted, and append then grows).
		size := len(body) + bytes.Count(body, []byte(`"outcome"`))*(len(`,"workerId":""`)+len(workerID))
		if !in.acquire(int64(size)) {
			return nil, errorBody{Error: errBusy{in.cfg.MaxInflightBytes}.Error()}, http.StatusTooManyRequests, 0
		}
		reserved = int64(size)
		arena = make([]byte, 0, size)
	}
	var t schemas.TraceItem
	for {
		raw, err := rd.Next(&t)
		if err == io.EOF {
			return items, nil, 0, reserved
		}
		if err != nil {
			var ie *schemas.ItemError
			if errors.As(err, &ie) {
				eb := errorBody{Error: ie.Error(), Index: &ie.Index, Line: ie.Line}
				if ie.Line == 0 {
					eb.Offset = &ie.Offset
				}
				code := http.StatusBadRequest
				var fe *schemas.FieldError
				switch {
				case errors.As(err, &fe):
					eb.Field = fe.Field
					in.refused.WithLabelValues("out_of_range").Inc()
				case errors.Is(err, schemas.ErrItemTooLarge):
					code = http.StatusRequestEntityTooLarge
					in.refused.WithLabelValues("too_large").Inc()
				case errors.Is(err, schemas.ErrInvalid):
					in.refused.WithLabelValues("invalid").Inc()
				default:
					in.refused.WithLabelValues("bad_json").Inc()
				}
				return nil, eb, code, reserved
			}
			in.refused.WithLabelValues("bad_json").Inc()
			return nil, errorBody{Error: err.Error()}, http.StatusBadRequest, reserved
		}
		if len(items) == in.cfg.MaxItems {
			in.refused.WithLabelValues("too_large").Inc()
			return nil, errorBody{Error: fmt.Sprintf("more than %d items in one request", in.cfg.MaxItems)}, http.StatusRequestEntityTooLarge, reserved
		}
		end := rd.Offset()
		value := body[end-int64(len(raw)) : end : end]
		if workerID != "" && t.WorkerID != workerID {
			if t.WorkerID != "" {
				idx := len(items)
				return nil, errorBody{Error: fmt.Sprintf("item %d: workerId %q conflicts with the request's %s %q", idx, t.WorkerID, WorkerIDParam, workerID), Index: &idx}, http.StatusBadRequest, reserved
			}
			// raw is one object ending in '}', with at least an outcome.
			off := len(arena)
			arena = append(arena, raw[:len(raw)-1]...)
			arena = append(arena, `,"workerId":"`...)
			arena = append(arena, workerID...) // needs no JSON escaping
			arena = append(arena, `"}`...)
			value = arena[off:len(arena):len(arena)]
			t.WorkerID = workerID // for the key
		}
		it := RawItem{Key: schemas.Key(&t), Value: value}
		if err := in.pub.Fits(it); err != nil {
			idx := len(items)
			in.refused.WithLabelValues("too_large").Inc()
			return nil, errorBody{Error: fmt.Sprintf("item %d: %v", idx, err), Index: &idx}, http.StatusRequestEntityTooLarge, reserved
		}
		items = append(items, it)
	}
}

// warnRateLimited logs a publish failure at most every 10s: an outage must
// not flood the log with one line per request.
func (in *Ingest) warnRateLimited(msg string, err error, items int) {
	now := time.Now().UnixNano()
	last := in.lastWarn.Load()
	if now-last < int64(10*time.Second) || !in.lastWarn.CompareAndSwap(last, now) {
		return
	}
	in.log.Warn(msg, "err", err, "items", items, "reason", Reason(err))
}
