package producer

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/kafkaclient"
	"github.com/taillight/taillight/schemas"
)

// Config configures a Publisher. The zero value is not usable: start from
// DefaultConfig or RegisterFlags.
type Config struct {
	// Kafka is the client configuration: Brokers (required), TLS and SASL,
	// and extra franz-go options (Kafka.Opts, a test seam) applied after
	// the producer's own, so they win.
	Kafka kafkaclient.Config
	// Topic is the topic TraceItems are published to. Default schemas.DefaultTopic.
	Topic string
	// ClientID identifies this client to the brokers (logs, quotas). Default "taillight".
	ClientID string
	// Compression is the batch codec: zstd (default, at its fastest
	// level), lz4, snappy or none.
	Compression string
	// Linger is how long a partition waits for more records before a produce
	// request is built. Default 5ms.
	Linger time.Duration
	// MaxBufferedRecords bounds records handed to the client but not yet
	// acknowledged; Publish blocks (until its ctx ends) at the bound. Default 10000.
	MaxBufferedRecords int
	// MaxBufferedBytes bounds the same records by size; 0 is unlimited.
	// Default 64 MiB.
	MaxBufferedBytes int
	// DeliveryTimeout fails a record that was not acknowledged within it
	// (when that is safe for the idempotent sequence). Default 30s; 0 is unlimited.
	DeliveryTimeout time.Duration
	// DialTimeout bounds one connection attempt to a broker. Default 5s.
	DialTimeout time.Duration
}

// DefaultConfig returns the documented defaults with no brokers.
func DefaultConfig() Config {
	return Config{
		Topic:              schemas.DefaultTopic,
		ClientID:           "taillight",
		Compression:        "zstd",
		Linger:             5 * time.Millisecond,
		MaxBufferedRecords: 10000,
		MaxBufferedBytes:   64 << 20,
		DeliveryTimeout:    30 * time.Second,
		DialTimeout:        5 * time.Second,
	}
}

// RegisterFlags registers the Kafka producer flags, each named prefix +
// "kafka.<name>" (so "" gives -kafka.brokers and the -kafka.tls and
// -kafka.sasl flags). The values in c are the defaults (start from
// DefaultConfig); it changes no field.
func (c *Config) RegisterFlags(fs *flag.FlagSet, prefix string) {
	p := prefix + "kafka."
	c.Kafka.RegisterFlags(fs, p)
	fs.StringVar(&c.Topic, p+"topic", c.Topic, "topic to publish TraceItems to")
	fs.StringVar(&c.ClientID, p+"client-id", c.ClientID, "Kafka client id")
	fs.StringVar(&c.Compression, p+"compression", c.Compression, "batch compression: zstd, lz4, snappy or none")
	fs.DurationVar(&c.Linger, p+"linger", c.Linger, "how long a partition waits for more records before sending")
	fs.IntVar(&c.MaxBufferedRecords, p+"max-buffered-records", c.MaxBufferedRecords, "records buffered but not yet acknowledged before publishing blocks")
	fs.IntVar(&c.MaxBufferedBytes, p+"max-buffered-bytes", c.MaxBufferedBytes, "bytes buffered but not yet acknowledged before publishing blocks (0 = unlimited)")
	fs.DurationVar(&c.DeliveryTimeout, p+"delivery-timeout", c.DeliveryTimeout, "fail a record not acknowledged within this time (0 = never)")
	fs.DurationVar(&c.DialTimeout, p+"dial-timeout", c.DialTimeout, "timeout of one broker connection attempt")
}

// Validate reports the first problem with c.
func (c *Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	if c.Topic == "" {
		return errors.New("producer: topic is empty")
	}
	if _, err := codecs(c.Compression); err != nil {
		return err
	}
	if c.Linger < 0 || c.DeliveryTimeout < 0 || c.DialTimeout <= 0 {
		return fmt.Errorf("producer: linger (%s) and delivery timeout (%s) must not be negative, dial timeout (%s) must be positive",
			c.Linger, c.DeliveryTimeout, c.DialTimeout)
	}
	if c.MaxBufferedRecords <= 0 || c.MaxBufferedBytes < 0 {
		return fmt.Errorf("producer: max buffered records (%d) must be positive and max buffered bytes (%d) not negative",
			c.MaxBufferedRecords, c.MaxBufferedBytes)
	}
	if c.MaxBufferedBytes > 0 && c.MaxBufferedBytes < schemas.MaxItemBytes {
		return fmt.Errorf("producer: max buffered bytes (%d) must hold at least one item of %d bytes", c.MaxBufferedBytes, schemas.MaxItemBytes)
	}
	return nil
}

// codecs maps a compression name to kgo's preference list. zstd falls back
// to lz4 and then none on brokers older than 2.1, which lack zstd.
func codecs(name string) ([]kgo.CompressionCodec, error) {
	switch name {
	case "zstd":
		// The fastest level: on TraceItem batches it compresses as well as
		// the default (6.32 against 6.37) for about a quarter less CPU.
		zstdFastest := kgo.ZstdCompression().WithLevel(int(zstd.SpeedFastest))
		return []kgo.CompressionCodec{zstdFastest, kgo.Lz4Compression(), kgo.NoCompression()}, nil
	case "lz4":
		return []kgo.CompressionCodec{kgo.Lz4Compression(), kgo.NoCompression()}, nil
	case "snappy":
		return []kgo.CompressionCodec{kgo.SnappyCompression(), kgo.NoCompression()}, nil
	case "none":
		return []kgo.CompressionCodec{kgo.NoCompression()}, nil
	}
	return nil, fmt.Errorf("producer: compression %q: want zstd, lz4, snappy or none", name)
}
