package processor

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/processor/redact"
	"github.com/taillight/taillight/schemas"
)

// Defaults applied by New to zero Config fields and by RegisterFlags.
const (
	DefaultGroup           = "taillight"
	DefaultMaxRows         = 100000
	DefaultMaxBytes        = 64 << 20
	DefaultLinger          = 500 * time.Millisecond
	DefaultMaxPollRecords  = 1000
	DefaultFetchMaxBytes   = 1 << 20
	DefaultShutdownTimeout = 30 * time.Second
	DefaultSessionTimeout  = 45 * time.Second
	DefaultRetryMin        = 100 * time.Millisecond
	DefaultRetryMax        = 10 * time.Second
	DefaultPacketRows      = 1024
	DefaultSealInterval    = time.Minute
	DefaultKafkaTimeout    = 10 * time.Second
	DefaultLogCheck        = 30 * time.Second
	DefaultStuckAfter      = time.Minute
	DefaultMemoryBudget    = 128 << 20
)

// Config configures a Processor. Zero fields take the defaults above.
type Config struct {
	// Brokers are the Kafka seed brokers (host:port). Required.
	Brokers []string
	// Topic is the TraceItem topic. Default schemas.DefaultTopic.
	Topic string
	// Group is the consumer group. Default "taillight".
	Group string
	// DLQTopic receives poison records. Default Topic + schemas.DLQSuffix.
	DLQTopic string
	// MaxRows, MaxBytes and Linger cut a partition's block: it is written
	// when it holds MaxRows records or MaxBytes of record bytes, or Linger
	// after its first record arrived, whichever comes first. While the
	// partition is behind (more records past the block as of the last
	// fetch than four such blocks hold), the linger stretches to four times
	// Linger. Every block costs ClickHouse a part in each table it writes,
	// and merges later, so a backlog is best caught up in large blocks:
	// default 100,000 records or 64 MiB (memory does not grow with them
	// while rows are streamed).
	MaxRows  int
	MaxBytes int
	Linger   time.Duration
	// PacketRows is how many raw rows the processor holds before it sends
	// them on the block's open stream (unless NoStream); a block's raw rows
	// are then never held whole, and memory no longer grows with MaxRows and
	// MaxBytes.
	PacketRows int
	// NoStream makes the processor hold each block's raw rows until the
	// block is cut and hand them to the sink's Commit whole. A streamed
	// block whose stream fails is read again from Kafka; with NoStream it
	// is retried from memory.
	NoStream bool
	// MaxPollRecords bounds one poll; when a partition's unprocessed records
	// reach twice this, polling waits until its worker catches up.
	MaxPollRecords int
	// FetchMaxBytes bounds one fetch response (compressed). franz-go buffers
	// one fetch per broker ahead of polling, decompressed, and rows alias
	// those batches until they are sent, so with streaming this and
	// MaxPollRecords bound most of the processor's memory. Default 1 MiB.
	FetchMaxBytes int
	// Redaction are the opt-in rules on top of the runtime's default policy.
	Redaction redact.Rules
	// RoutePatterns are route templates that win over the ID heuristic (see
	// redact.Router), e.g. "/users/:id/orders".
	RoutePatterns []string
	// SessionTimeout is the group session timeout: how long the coordinator
	// waits for a silent member (a crashed process) before giving its
	// partitions to others. Default 45s (franz-go's); the broker bounds it
	// (group.min.session.timeout.ms, 6 s by default).
	SessionTimeout time.Duration
	// ShutdownTimeout bounds the final flush on stop and on revoke; keep it
	// below the group's rebalance timeout (60 s by default).
	ShutdownTimeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff between attempts
	// to write a block the sink refused with a transient error.
	RetryMin, RetryMax time.Duration
	// SealInterval is how often the settled blocks of the owned partitions
	// are sealed into per-minute rows (sinks.Sink.Seal).
	// Default 1m; negative turns sealing off (reads then grow with the
	// journal until another processor seals).
	SealInterval time.Duration
	// KafkaTimeout bounds each administrative Kafka request the processor
	// makes itself (metadata, log offsets, a block read again). Default 10s.
	KafkaTimeout time.Duration
	// LogCheck is how often the topic's ID is compared with the one the
	// partitions were stored under (docs/reliability.md "Log changes").
	// Default 30s; negative turns the periodic check off (assignment and
	// OFFSET_OUT_OF_RANGE are still checked).
	LogCheck time.Duration
	// MemoryBudget bounds the bytes the processor holds across all its
	// partitions: records polled and the rows built from them, until the
	// rows are sent to the sink (streamed) or stored (NoStream), counted as
	// the records' size for each. Past it, polling waits and partitions
	// send their rows early. Default 128 MiB; `taillight process` also
	// sets the Go runtime's soft memory limit to the budget plus 80 MiB.
	MemoryBudget int64
	// StuckAfter is how long one commit (raw rows, DLQ, rollups, retries
	// included) may take before Ready reports the sink stuck. Default 1m.
	StuckAfter time.Duration
	// Limits are the value ranges a record must respect to be stored; a
	// record outside them goes to the DLQ (reason out_of_range). The
	// eventTimestamp allowance counts from the record's Kafka timestamp
	// (its produce time), so a block read again gets the same rows. Zero
	// Limits take schemas.DefaultLimits.
	Limits schemas.Limits
	// KafkaOpts are extra franz-go client options appended last (TLS, SASL,
	// a test dialer). They must not change the group or commit options.
	KafkaOpts []kgo.Opt
}

// RegisterFlags registers the processor's flags on fs, each name prefixed
// with prefix: kafka.brokers, kafka.topic, kafka.group, kafka.dlq-topic,
// kafka.max-poll-records, kafka.session-timeout, flush.max-rows, flush.max-bytes, flush.linger,
// route.patterns, shutdown-timeout, sink.retry-max and the redaction rules
// under redact.*.
func (c *Config) RegisterFlags(fs *flag.FlagSet, prefix string) {
	if c.Topic == "" {
		c.Topic = schemas.DefaultTopic
	}
	if len(c.Brokers) == 0 {
		c.Brokers = []string{"127.0.0.1:9092"}
	}
	fs.Func(prefix+"kafka.brokers", "comma-separated Kafka seed brokers (default 127.0.0.1:9092)", func(v string) error {
		c.Brokers = splitList(v)
		return nil
	})
	fs.StringVar(&c.Topic, prefix+"kafka.topic", c.Topic, "topic to consume TraceItems from")
	fs.StringVar(&c.Group, prefix+"kafka.group", or(c.Group, DefaultGroup), "consumer group")
	fs.StringVar(&c.DLQTopic, prefix+"kafka.dlq-topic", c.DLQTopic, "dead-letter topic for poison records (default <topic>.dlq)")
	fs.IntVar(&c.MaxPollRecords, prefix+"kafka.max-poll-records", orInt(c.MaxPollRecords, DefaultMaxPollRecords), "records taken per poll; polling waits while a partition has twice this many unprocessed")
	fs.IntVar(&c.FetchMaxBytes, prefix+"kafka.fetch-max-bytes", orInt(c.FetchMaxBytes, DefaultFetchMaxBytes), "largest fetch response; with one fetch buffered per broker, it bounds memory")
	fs.IntVar(&c.MaxRows, prefix+"flush.max-rows", orInt(c.MaxRows, DefaultMaxRows), "write a partition's block when it holds this many records")
	fs.IntVar(&c.MaxBytes, prefix+"flush.max-bytes", orInt(c.MaxBytes, DefaultMaxBytes), "write a partition's block when its records reach this many bytes")
	fs.IntVar(&c.PacketRows, prefix+"flush.packet-rows", orInt(c.PacketRows, DefaultPacketRows), "raw rows held before they are sent on the block's open INSERT")
	fs.BoolVar(&c.NoStream, prefix+"flush.no-stream", c.NoStream, "hold each block's raw rows until it is cut and INSERT them whole (more memory; a failed block is retried from memory instead of re-read from Kafka)")
	fs.DurationVar(&c.Linger, prefix+"flush.linger", orDur(c.Linger, DefaultLinger), "write a partition's block this long after its first record at the latest")
	fs.Func(prefix+"route.patterns", "comma-separated route templates that win over the ID heuristic, e.g. /users/:id/orders", func(v string) error {
		c.RoutePatterns = splitList(v)
		return nil
	})
	fs.DurationVar(&c.SessionTimeout, prefix+"kafka.session-timeout", orDur(c.SessionTimeout, DefaultSessionTimeout), "consumer group session timeout: how soon a crashed member's partitions move")
	fs.DurationVar(&c.ShutdownTimeout, prefix+"shutdown-timeout", orDur(c.ShutdownTimeout, DefaultShutdownTimeout), "bound on the final flush when stopping or giving up partitions")
	fs.DurationVar(&c.SealInterval, prefix+"seal.interval", orDur(c.SealInterval, DefaultSealInterval), "how often to seal the owned partitions' settled blocks into per-minute rows (negative: never)")
	fs.DurationVar(&c.KafkaTimeout, prefix+"kafka.timeout", orDur(c.KafkaTimeout, DefaultKafkaTimeout), "bound on each metadata and log-offset request, and on each read of a block again from Kafka")
	fs.DurationVar(&c.LogCheck, prefix+"kafka.log-check", orDur(c.LogCheck, DefaultLogCheck), "how often to check that the topic is still the one the stored offsets belong to (negative: only on assignment)")
	fs.Int64Var(&c.MemoryBudget, prefix+"memory.budget", orInt64(c.MemoryBudget, DefaultMemoryBudget), "record bytes held across all partitions (polled, not yet sent to ClickHouse) before polling waits")
	fs.DurationVar(&c.StuckAfter, prefix+"sink.stuck-after", orDur(c.StuckAfter, DefaultStuckAfter), "report not ready (/readyz) when one commit takes longer than this")
	fs.DurationVar(&c.RetryMax, prefix+"sink.retry-max", orDur(c.RetryMax, DefaultRetryMax), "longest backoff between attempts to write a block while the sink fails")
	c.Redaction.RegisterFlags(fs, prefix+"redact.")
	c.Limits.RegisterFlags(fs, prefix+"limits.")
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func or(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func orInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

func orInt64(v, d int64) int64 {
	if v == 0 {
		return d
	}
	return v
}

func orDur(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	c.Topic = or(c.Topic, schemas.DefaultTopic)
	c.Group = or(c.Group, DefaultGroup)
	c.DLQTopic = or(c.DLQTopic, c.Topic+schemas.DLQSuffix)
	c.MaxRows = orInt(c.MaxRows, DefaultMaxRows)
	c.MaxBytes = orInt(c.MaxBytes, DefaultMaxBytes)
	c.Linger = orDur(c.Linger, DefaultLinger)
	c.MaxPollRecords = orInt(c.MaxPollRecords, DefaultMaxPollRecords)
	c.PacketRows = orInt(c.PacketRows, DefaultPacketRows)
	c.FetchMaxBytes = orInt(c.FetchMaxBytes, DefaultFetchMaxBytes)
	c.ShutdownTimeout = orDur(c.ShutdownTimeout, DefaultShutdownTimeout)
	c.SessionTimeout = orDur(c.SessionTimeout, DefaultSessionTimeout)
	c.RetryMin = orDur(c.RetryMin, DefaultRetryMin)
	c.RetryMax = orDur(c.RetryMax, DefaultRetryMax)
	c.SealInterval = orDur(c.SealInterval, DefaultSealInterval)
	c.KafkaTimeout = orDur(c.KafkaTimeout, DefaultKafkaTimeout)
	c.LogCheck = orDur(c.LogCheck, DefaultLogCheck)
	c.StuckAfter = orDur(c.StuckAfter, DefaultStuckAfter)
	c.MemoryBudget = orInt64(c.MemoryBudget, DefaultMemoryBudget)
	if c.Limits == (schemas.Limits{}) {
		c.Limits = schemas.DefaultLimits()
	}
	return c
}

// Validate reports a configuration New would refuse. Zero fields count as
// their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no Kafka brokers"))
	}
	if c.DLQTopic == c.Topic {
		errs = append(errs, fmt.Errorf("DLQ topic %q must differ from the topic", c.DLQTopic))
	}
	if c.MemoryBudget < 0 {
		errs = append(errs, fmt.Errorf("memory budget (%d) must be positive", c.MemoryBudget))
	}
	if c.MaxRows < 0 || c.MaxBytes < 0 || c.Linger < 0 || c.MaxPollRecords < 0 || c.FetchMaxBytes < 0 || c.PacketRows < 0 {
		errs = append(errs, fmt.Errorf("flush max rows (%d), max bytes (%d), linger (%s), packet rows (%d), max poll records (%d) and fetch max bytes (%d) must be positive",
			c.MaxRows, c.MaxBytes, c.Linger, c.PacketRows, c.MaxPollRecords, c.FetchMaxBytes))
	}
	if c.ShutdownTimeout < 0 || c.SessionTimeout < 0 || c.KafkaTimeout < 0 || c.RetryMin < 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("shutdown timeout (%s) must be positive and retry max (%s) at least retry min (%s)",
			c.ShutdownTimeout, c.RetryMax, c.RetryMin))
	}
	if err := c.Redaction.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("processor config: %w", err)
	}
	return nil
}
