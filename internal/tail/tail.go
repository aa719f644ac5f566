// Package tail is `taillight tail`: a live view of the trace-items topic in
// the spirit of `wrangler tail`. It reads the partitions directly, without a
// consumer group, so it never joins, rebalances or commits for the
// processors' group; it redacts every item with the default policy (the one
// the processors apply before anything reaches ClickHouse), filters, samples
// and prints one line per invocation (pretty) or one JSON object per line.
//
// The package exports no metrics: tail is an interactive tool.
package tail

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/internal/flagx"
	"github.com/taillight/taillight/kafkaclient"
	"github.com/taillight/taillight/processor/redact"
	"github.com/taillight/taillight/schemas"
)

// Format names for Config.Format.
const (
	FormatPretty = "pretty"
	FormatJSON   = "json"
)

// Filter selects the invocations to show. An empty list matches everything;
// a non-empty one matches any of its values. All set fields must match.
type Filter struct {
	// Scripts are scriptName values (an item with a null scriptName matches "").
	Scripts []string
	// WorkerIDs are Dynamic Worker ids (workerId; an item without one
	// matches "").
	WorkerIDs []string
	// Namespaces are Workers for Platforms dispatch namespaces
	// (dispatchNamespace; an item outside any matches "").
	Namespaces []string
	// Outcomes are outcome values (ok, exception, exceededCpu, canceled, …),
	// compared ignoring case.
	Outcomes []string
	// Statuses are fetch response statuses: "500", or a class "5xx". An
	// invocation without a response has status 0.
	Statuses []string
	// Methods are HTTP methods of fetch requests, compared ignoring case.
	Methods []string
	// Search is text looked for, ignoring case, in the request URL, the log
	// messages and the exceptions' names, messages and stacks, after
	// redaction (so a search cannot probe for a redacted value).
	Search string
	// SamplingRate is the fraction of records shown, 0 to 1 (default 1). The
	// choice is a hash of the record's partition and offset, so the same
	// record is always in or always out.
	SamplingRate float64
}

// Config configures a Tailer. Start from DefaultConfig.
type Config struct {
	// Kafka is the client configuration: Brokers (required; default
	// 127.0.0.1:9092), TLS and SASL.
	Kafka kafkaclient.Config
	// Topic is the topic read. Default schemas.DefaultTopic.
	Topic string
	// FromBeginning reads every partition from its first retained offset
	// instead of only what arrives after the start.
	FromBeginning bool
	// Format is FormatPretty (default) or FormatJSON.
	Format string
	// Color turns on ANSI colours in the pretty format. Default off.
	Color bool
	// Limit stops after this many invocations were printed (0: never).
	Limit  int
	Filter Filter
}

// DefaultConfig returns the defaults: the seed broker 127.0.0.1:9092, the
// default topic, the pretty format and every record sampled.
func DefaultConfig() Config {
	return Config{
		Kafka:  kafkaclient.Config{Brokers: []string{"127.0.0.1:9092"}},
		Topic:  schemas.DefaultTopic,
		Format: FormatPretty,
		Filter: Filter{SamplingRate: 1},
	}
}

// RegisterFlags registers the flags of the config under prefix, the Kafka
// TLS and SASL flags included. The values in c are the defaults (start
// from DefaultConfig); it changes no field.
func (c *Config) RegisterFlags(fs *flag.FlagSet, prefix string) {
	c.Kafka.RegisterFlags(fs, prefix+"kafka.")
	fs.StringVar(&c.Topic, prefix+"kafka.topic", c.Topic, "topic to read TraceItems from")
	fs.BoolVar(&c.FromBeginning, prefix+"from-beginning", c.FromBeginning, "start at the oldest retained record of each partition instead of the end")
	fs.StringVar(&c.Format, prefix+"format", c.Format, "output: pretty (one line per invocation, then its logs and exceptions) or json (one TraceItem per line)")
	fs.IntVar(&c.Limit, prefix+"limit", c.Limit, "stop after printing this many invocations (0: run until interrupted)")
	fs.Var((*flagx.List)(&c.Filter.Scripts), prefix+"script", "comma-separated script names to show")
	fs.Var((*flagx.List)(&c.Filter.WorkerIDs), prefix+"worker-id", "comma-separated Dynamic Worker ids (workerId) to show")
	fs.Var((*flagx.List)(&c.Filter.Namespaces), prefix+"namespace", "comma-separated dispatch namespaces (Workers for Platforms) to show")
	fs.Var((*flagx.List)(&c.Filter.Outcomes), prefix+"outcome", "comma-separated outcomes to show: ok, exception, exceededCpu, exceededMemory, canceled, …")
	fs.Var((*flagx.List)(&c.Filter.Statuses), prefix+"status", "comma-separated response statuses to show: 500, or classes like 5xx")
	fs.Var((*flagx.List)(&c.Filter.Methods), prefix+"method", "comma-separated HTTP methods to show: GET, POST, …")
	fs.StringVar(&c.Filter.Search, prefix+"search", c.Filter.Search, "show only invocations whose URL, logs or exceptions contain this text (ignoring case)")
	fs.Float64Var(&c.Filter.SamplingRate, prefix+"sampling-rate", c.Filter.SamplingRate, "fraction of records to show, 0 to 1; the same record is always chosen the same way")
}

// Validate reports what is wrong with the config.
func (c *Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	if c.Topic == "" {
		return errors.New("tail: empty topic (-kafka.topic)")
	}
	if c.Format != FormatPretty && c.Format != FormatJSON {
		return fmt.Errorf("tail: format %q: want pretty or json", c.Format)
	}
	if c.Limit < 0 {
		return fmt.Errorf("tail: limit %d is negative", c.Limit)
	}
	f := &c.Filter
	if math.IsNaN(f.SamplingRate) || f.SamplingRate < 0 || f.SamplingRate > 1 {
		return fmt.Errorf("tail: sampling rate %v: want 0 to 1", f.SamplingRate)
	}
	for _, s := range f.Statuses {
		if _, _, err := parseStatus(s); err != nil {
			return err
		}
	}
	return nil
}

// parseStatus turns "500" into [500,500] and "5xx" into [500,599].
func parseStatus(s string) (lo, hi int, err error) {
	ls := strings.ToLower(strings.TrimSpace(s))
	if len(ls) == 3 && ls[1:] == "xx" && ls[0] >= '1' && ls[0] <= '9' {
		lo = int(ls[0]-'0') * 100
		return lo, lo + 99, nil
	}
	n, err := strconv.Atoi(ls)
	if err != nil || n < 0 || n > 999 {
		return 0, 0, fmt.Errorf("tail: status %q: want a number like 500 or a class like 5xx", s)
	}
	return n, n, nil
}

// Tailer reads the topic and prints what passes the filter. Run it once.
type Tailer struct {
	cfg      Config
	out      io.Writer
	warn     io.Writer
	log      *slog.Logger
	policy   *redact.Policy
	statuses [][2]int
	search   string
	thresh   uint64 // sample when hash < thresh (or always when rate is 1)
	printed  int
	buf      []byte
	mu       sync.Mutex
}

// New checks cfg and returns a Tailer writing invocations to out and one line
// per undecodable record to warn. log may be nil.
func New(cfg Config, out, warn io.Writer, log *slog.Logger) (*Tailer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The default policy only: Cloudflare's own rules, the ones applied to
	// everything the dashboards show.
	p, err := redact.New(redact.Rules{})
	if err != nil {
		return nil, fmt.Errorf("tail: redaction policy: %w", err)
	}
	t := &Tailer{cfg: cfg, out: out, warn: warn, log: log, policy: p, search: strings.ToLower(cfg.Filter.Search)}
	for _, s := range cfg.Filter.Statuses {
		lo, hi, _ := parseStatus(s)
		t.statuses = append(t.statuses, [2]int{lo, hi})
	}
	t.thresh = uint64(cfg.Filter.SamplingRate * math.MaxUint64)
	return t, nil
}

// errLimit stops Run once Limit invocations were printed.
var errLimit = errors.New("limit reached")

// Run reads until ctx is cancelled (returning nil), the limit is reached
// (nil) or the client fails.
func (t *Tailer) Run(ctx context.Context) error {
	start := kgo.NewOffset().AtEnd()
	if t.cfg.FromBeginning {
		start = kgo.NewOffset().AtStart()
	}
	cl, err := t.cfg.Kafka.NewClient(nil, nil, "",
		kgo.ClientID("taillight-tail"),
		// No kgo.ConsumerGroup: direct assignment of every partition, so the
		// processors' group never sees this client.
		kgo.ConsumeTopics(t.cfg.Topic),
		kgo.ConsumeResetOffset(start),
		// A tail shows what was acknowledged, never aborted transactions.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		return fmt.Errorf("tail: kafka client: %w", err)
	}
	defer cl.Close()
	t.log.Debug("tailing", "topic", t.cfg.Topic, "from_beginning", t.cfg.FromBeginning)
	lastWarn := ""
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if fs.IsClientClosed() {
			return nil
		}
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			// The client retries fetch errors itself; say so once per
			// distinct error, not on every poll.
			msg := fmt.Sprintf("warning: fetching %s partition %d: %v\n", topic, p, err)
			if msg != lastWarn {
				lastWarn = msg
				io.WriteString(t.warn, msg)
			}
		})
		stop := false
		fs.EachRecord(func(r *kgo.Record) {
			if stop {
				return
			}
			if err := t.handle(r.Partition, r.Offset, r.Value); errors.Is(err, errLimit) {
				stop = true
			} else if err != nil {
				fmt.Fprintf(t.warn, "warning: writing output: %v\n", err)
				stop = true
			}
		})
		if stop {
			return nil
		}
	}
}

// sampled reports whether the record at (partition, offset) is in the sample.
func (t *Tailer) sampled(partition int32, offset int64) bool {
	switch t.cfg.Filter.SamplingRate {
	case 1:
		return true
	case 0:
		return false
	}
	return mix(uint64(partition)<<48^uint64(offset)) < t.thresh
}

// mix is SplitMix64's finaliser: a cheap hash with good avalanche, so
// consecutive offsets are sampled independently.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// handle decodes, redacts, filters and prints one record. It returns
// errLimit once Limit invocations were printed, or a write error.
func (t *Tailer) handle(partition int32, offset int64, value []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.sampled(partition, offset) {
		return nil
	}
	var it schemas.TraceItem
	if err := schemas.Unmarshal(value, &it); err != nil {
		// A poison record is the processors' business (they send it to the
		// DLQ); here it is one line, and the tail goes on.
		_, werr := fmt.Fprintf(t.warn, "warning: partition %d offset %d: undecodable record (%d bytes): %v\n", partition, offset, len(value), err)
		return werr
	}
	t.policy.Item(&it)
	if !t.match(&it) {
		return nil
	}
	var err error
	t.buf = t.buf[:0]
	if t.cfg.Format == FormatJSON {
		t.buf, err = schemas.Marshal(t.buf, &it)
		if err != nil {
			_, werr := fmt.Fprintf(t.warn, "warning: partition %d offset %d: encoding: %v\n", partition, offset, err)
			return werr
		}
		t.buf = append(t.buf, '\n')
	} else {
		t.buf = appendPretty(t.buf, &it, t.cfg.Color)
	}
	if _, err := t.out.Write(t.buf); err != nil {
		return err
	}
	t.printed++
	if t.cfg.Limit > 0 && t.printed >= t.cfg.Limit {
		return errLimit
	}
	return nil
}

// match applies the filter to a redacted item.
func (t *Tailer) match(it *schemas.TraceItem) bool {
	f := &t.cfg.Filter
	if len(f.Scripts) > 0 && !contains(f.Scripts, it.Script(), false) {
		return false
	}
	if len(f.WorkerIDs) > 0 && !contains(f.WorkerIDs, it.WorkerID, false) {
		return false
	}
	if len(f.Namespaces) > 0 && !contains(f.Namespaces, it.DispatchNamespace, false) {
		return false
	}
	if len(f.Outcomes) > 0 && !contains(f.Outcomes, it.Outcome, true) {
		return false
	}
	if len(f.Methods) > 0 {
		m := ""
		if it.Event != nil && it.Event.Request != nil {
			m = it.Event.Request.Method
		}
		if !contains(f.Methods, m, true) {
			return false
		}
	}
	if len(t.statuses) > 0 {
		s, ok := it.Status(), false
		for _, r := range t.statuses {
			ok = ok || s >= r[0] && s <= r[1]
		}
		if !ok {
			return false
		}
	}
	if t.search != "" && !t.found(it) {
		return false
	}
	return true
}

func (t *Tailer) found(it *schemas.TraceItem) bool {
	has := func(s string) bool { return strings.Contains(strings.ToLower(s), t.search) }
	if it.Event != nil && it.Event.Request != nil && has(it.Event.Request.URL) {
		return true
	}
	for _, l := range it.Logs {
		if has(string(l.Message)) {
			return true
		}
	}
	for _, e := range it.Exceptions {
		if has(e.Name) || has(e.Message) || has(e.Stack) {
			return true
		}
	}
	return false
}

func contains(list []string, v string, fold bool) bool {
	for _, s := range list {
		if s == v || fold && strings.EqualFold(s, v) {
			return true
		}
	}
	return false
}
