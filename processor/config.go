package processor

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/taillight/taillight/internal/backoff"
	"github.com/taillight/taillight/internal/flagx"
	"github.com/taillight/taillight/kafkaclient"
	"github.com/taillight/taillight/processor/redact"
	"github.com/taillight/taillight/schemas"
)

// Defaults: the values of DefaultConfig.
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

// Config configures a Processor. Start from DefaultConfig: New refuses
// zero sizes and durations.
type Config struct {
	// Kafka is the client configuration: Brokers (required; default
	// 127.0.0.1:9092), TLS and SASL, and FetchMaxBytes, which bounds one
	// fetch response (compressed). franz-go buffers one fetch per broker
	// ahead of polling, decompressed, and rows alias those batches until
	// they are sent, so with streaming FetchMaxBytes and MaxPollRecords
	// bound most of the processor's memory. Default 1 MiB. Kafka.Opts must
	// not change the group or commit options.
	Kafka kafkaclient.Config
	// Topic is the TraceItem topic. Default schemas.DefaultTopic.
	Topic string
	// Group is the consumer group. Default "taillight".
	Group string
	// DLQTopic receives poison records. Default Topic + schemas.DLQSuffix.
	DLQTopic string
	// MaxRows, MaxBytes and Linger cut a partition's block: it is written
	// when it holds MaxRows records or MaxBytes of record bytes, or Linger
	// after its first record arrived, whichever comes first. While a
	// partition is behind (more records past the block as of the last
	// fetch than four such blocks hold), the linger stretches to four times
	// Linger, and the blocks of the processor's other partitions are cut
	// with it, so they are still committed together (their records wait up
	// to four lingers meanwhile). Every block costs ClickHouse a part in each table it writes,
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
	// (its produce time), so a block read again gets the same rows.
	// Default schemas.DefaultLimits.
	Limits schemas.Limits
}

// DefaultConfig returns the documented defaults, with the seed broker
// 127.0.0.1:9092.
func DefaultConfig() Config {
	return Config{
		Kafka:           kafkaclient.Config{Brokers: []string{"127.0.0.1:9092"}, FetchMaxBytes: DefaultFetchMaxBytes},
		Topic:           schemas.DefaultTopic,
		Group:           DefaultGroup,
		MaxRows:         DefaultMaxRows,
		MaxBytes:        DefaultMaxBytes,
		Linger:          DefaultLinger,
		PacketRows:      DefaultPacketRows,
		MaxPollRecords:  DefaultMaxPollRecords,
		SessionTimeout:  DefaultSessionTimeout,
		ShutdownTimeout: DefaultShutdownTimeout,
		RetryMin:        DefaultRetryMin,
		RetryMax:        DefaultRetryMax,
		SealInterval:    DefaultSealInterval,
		KafkaTimeout:    DefaultKafkaTimeout,
		LogCheck:        DefaultLogCheck,
		MemoryBudget:    DefaultMemoryBudget,
		StuckAfter:      DefaultStuckAfter,
		Limits:          schemas.DefaultLimits(),
	}
}

// RegisterFlags registers the processor's flags on fs, each name prefixed
// with prefix: kafka.brokers and the Kafka TLS and SASL flags, kafka.topic,
// kafka.group, kafka.dlq-topic, kafka.max-poll-records,
// kafka.fetch-max-bytes, kafka.session-timeout, flush.*, route.patterns,
// shutdown-timeout, sink.*, seal.interval, memory.budget, and the
// redaction rules and value limits under redact.* and limits.*. The values
// in c are the defaults (start from DefaultConfig); it changes no field.
func (c *Config) RegisterFlags(fs *flag.FlagSet, prefix string) {
	c.Kafka.RegisterFlags(fs, prefix+"kafka.")
	fs.StringVar(&c.Topic, prefix+"kafka.topic", c.Topic, "topic to consume TraceItems from")
	fs.StringVar(&c.Group, prefix+"kafka.group", c.Group, "consumer group")
	fs.StringVar(&c.DLQTopic, prefix+"kafka.dlq-topic", c.DLQTopic, "dead-letter topic for poison records (default <topic>.dlq)")
	fs.IntVar(&c.MaxPollRecords, prefix+"kafka.max-poll-records", c.MaxPollRecords, "records taken per poll; polling waits while a partition has twice this many unprocessed")
	fs.IntVar(&c.Kafka.FetchMaxBytes, prefix+"kafka.fetch-max-bytes", c.Kafka.FetchMaxBytes, "largest fetch response; with one fetch buffered per broker, it bounds memory")
	fs.IntVar(&c.MaxRows, prefix+"flush.max-rows", c.MaxRows, "write a partition's block when it holds this many records")
	fs.IntVar(&c.MaxBytes, prefix+"flush.max-bytes", c.MaxBytes, "write a partition's block when its records reach this many bytes")
	fs.IntVar(&c.PacketRows, prefix+"flush.packet-rows", c.PacketRows, "raw rows held before they are sent on the block's open INSERT")
	fs.BoolVar(&c.NoStream, prefix+"flush.no-stream", c.NoStream, "hold each block's raw rows until it is cut and INSERT them whole (more memory; a failed block is retried from memory instead of re-read from Kafka)")
	fs.DurationVar(&c.Linger, prefix+"flush.linger", c.Linger, "write a partition's block this long after its first record at the latest")
	fs.Var((*flagx.List)(&c.RoutePatterns), prefix+"route.patterns", "comma-separated route templates that win over the ID heuristic, e.g. /users/:id/orders")
	fs.DurationVar(&c.SessionTimeout, prefix+"kafka.session-timeout", c.SessionTimeout, "consumer group session timeout: how soon a crashed member's partitions move")
	fs.DurationVar(&c.ShutdownTimeout, prefix+"shutdown-timeout", c.ShutdownTimeout, "bound on the final flush when stopping or giving up partitions")
	fs.DurationVar(&c.SealInterval, prefix+"seal.interval", c.SealInterval, "how often to seal the owned partitions' settled blocks into per-minute rows (negative: never)")
	fs.DurationVar(&c.KafkaTimeout, prefix+"kafka.timeout", c.KafkaTimeout, "bound on each metadata and log-offset request, and on each read of a block again from Kafka")
	fs.DurationVar(&c.LogCheck, prefix+"kafka.log-check", c.LogCheck, "how often to check that the topic is still the one the stored offsets belong to (negative: only on assignment)")
	fs.Int64Var(&c.MemoryBudget, prefix+"memory.budget", c.MemoryBudget, "record bytes held across all partitions (polled, not yet sent to ClickHouse) before polling waits")
	fs.DurationVar(&c.StuckAfter, prefix+"sink.stuck-after", c.StuckAfter, "report not ready (/readyz) when one commit takes longer than this")
	fs.DurationVar(&c.RetryMax, prefix+"sink.retry-max", c.RetryMax, "longest backoff between attempts to write a block while the sink fails")
	c.Redaction.RegisterFlags(fs, prefix+"redact.")
	c.Limits.RegisterFlags(fs, prefix+"limits.")
}

// backoff is the wait between attempts of a failing sink or Kafka call.
func (e *env) backoff() backoff.Backoff {
	return backoff.Backoff{Min: e.cfg.RetryMin, Max: e.cfg.RetryMax}
}

func or(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// withDefaults returns c with the defaults that derive from other fields:
// the DLQ topic.
func (c Config) withDefaults() Config {
	c.DLQTopic = or(c.DLQTopic, c.Topic+schemas.DLQSuffix)
	return c
}

// Validate reports a configuration New would refuse.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Topic == "" || c.Group == "" {
		errs = append(errs, fmt.Errorf("topic (%q) and group (%q) must not be empty", c.Topic, c.Group))
	}
	if c.DLQTopic == c.Topic {
		errs = append(errs, fmt.Errorf("DLQ topic %q must differ from the topic", c.DLQTopic))
	}
	if c.MemoryBudget <= 0 {
		errs = append(errs, fmt.Errorf("memory budget (%d) must be positive", c.MemoryBudget))
	}
	if c.MaxRows <= 0 || c.MaxBytes <= 0 || c.Linger <= 0 || c.MaxPollRecords <= 0 || c.Kafka.FetchMaxBytes <= 0 || c.PacketRows <= 0 {
		errs = append(errs, fmt.Errorf("flush max rows (%d), max bytes (%d), linger (%s), packet rows (%d), max poll records (%d) and fetch max bytes (%d) must be positive",
			c.MaxRows, c.MaxBytes, c.Linger, c.PacketRows, c.MaxPollRecords, c.Kafka.FetchMaxBytes))
	}
	if c.ShutdownTimeout <= 0 || c.SessionTimeout <= 0 || c.KafkaTimeout <= 0 || c.StuckAfter <= 0 || c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("shutdown timeout (%s), session timeout (%s), kafka timeout (%s) and stuck after (%s) must be positive, and retry max (%s) at least retry min (%s), which must be positive",
			c.ShutdownTimeout, c.SessionTimeout, c.KafkaTimeout, c.StuckAfter, c.RetryMax, c.RetryMin))
	}
	if c.SealInterval == 0 || c.LogCheck == 0 {
		errs = append(errs, fmt.Errorf("seal interval (%s) and log check (%s) must not be zero (negative turns them off)", c.SealInterval, c.LogCheck))
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
