// Package kafkaclient is taillight's one Kafka client configuration: the
// seed brokers, TLS and SASL (Auth), the fetch bound, logging and metrics,
// turned into a franz-go client by Config.NewClient. The producer, the
// processor (its group consumer and the client that reads a block again),
// tail, relog, ingest and bench all build their clients with it, each
// adding only the options of its role (group, acks, offsets).
//
// Config.Opts is the one way to inject extra franz-go options (a test
// dialer, shorter session timeouts): they are appended last and win. Flags
// never set them.
//
// Metrics: with a Registerer, the franz-go client metrics of kprom,
// named taillight_<subsystem>_…. A second client with the same subsystem
// on one registry runs without its own series (see promreg.Shared).
package kafkaclient

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/taillight/taillight/internal/flagx"
	"github.com/taillight/taillight/internal/promreg"
)

// Config configures a Kafka client. Only Brokers is required; the zero
// values of the rest are franz-go's defaults, plaintext and no SASL.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// FetchMaxBytes bounds one fetch response (compressed), and each
	// partition's share of it to at most 1 MiB. 0 keeps franz-go's
	// defaults (50 MiB, 1 MiB per partition). Only consumers fetch.
	FetchMaxBytes int
	// Auth are the TLS and SASL settings.
	Auth Auth
	// Opts are extra franz-go options appended after all others, so they
	// win: the seam for tests (kgo.Dialer, session timeouts). They must not
	// change what the client's user relies on (its group, commits, acks).
	Opts []kgo.Opt
}

// RegisterFlags registers prefix+"brokers" and the Auth flags
// (prefix+"tls…", prefix+"sasl…"), with prefix "kafka." -kafka.brokers and
// -kafka.tls. The values in c when it is called are the defaults; it
// changes no field.
func (c *Config) RegisterFlags(fs *flag.FlagSet, prefix string) {
	usage := "comma-separated Kafka seed brokers, host:port"
	if len(c.Brokers) == 0 {
		usage += " (required)"
	}
	fs.Var((*flagx.List)(&c.Brokers), prefix+"brokers", usage)
	c.Auth.RegisterFlags(fs, prefix)
}

// Validate reports the first problem with c. It reads no file.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafkaclient: no Kafka brokers configured (-kafka.brokers)")
	}
	for _, b := range c.Brokers {
		if b == "" || !strings.Contains(b, ":") {
			return fmt.Errorf("kafkaclient: broker %q is not host:port", b)
		}
	}
	if c.FetchMaxBytes < 0 {
		return fmt.Errorf("kafkaclient: fetch max bytes (%d) must not be negative", c.FetchMaxBytes)
	}
	return c.Auth.Validate()
}

// LogAttrs describes c for a log line, without any secret.
func (c *Config) LogAttrs() []any {
	return append([]any{"brokers", c.Brokers}, c.Auth.LogAttrs()...)
}

// NewClient validates c and returns a client with the seed brokers, TLS
// and SASL (reading their files now, so a missing file fails here rather
// than at the first connection), the fetch bound, log bridged to slog (nil:
// no logs), kprom metrics on reg under taillight_<subsystem>_ (nil reg: no
// metrics), then role, then c.Opts.
func (c *Config) NewClient(log *slog.Logger, reg prometheus.Registerer, subsystem string, role ...kgo.Opt) (*kgo.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	auth, err := c.Auth.opts()
	if err != nil {
		return nil, err
	}
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...)}, auth...)
	if log != nil {
		opts = append(opts, kgo.WithLogger(kslog.New(log)))
	}
	if c.FetchMaxBytes > 0 {
		opts = append(opts,
			kgo.FetchMaxBytes(int32(min(c.FetchMaxBytes, math.MaxInt32))),
			kgo.FetchMaxPartitionBytes(int32(min(c.FetchMaxBytes, 1<<20))))
	}
	if reg != nil {
		opts = append(opts, kgo.WithHooks(kprom.NewMetrics("taillight", kprom.Subsystem(subsystem), kprom.Registerer(promreg.Shared(reg)))))
	}
	opts = append(append(opts, role...), c.Opts...)
	return kgo.NewClient(opts...)
}
