package processor

import (
	"flag"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taillight/taillight/sinks/memsink"
)

func TestConfigFlags(t *testing.T) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs, "")
	if !reflect.DeepEqual(c, DefaultConfig()) {
		t.Fatalf("RegisterFlags changed the config: %+v", c)
	}
	if err := fs.Parse([]string{"-kafka.brokers", "a:1, b:2", "-kafka.topic", "t", "-flush.max-rows", "7",
		"-flush.linger", "3s", "-route.patterns", "/u/:id,/o/:id/items", "-redact.emails"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Kafka.Brokers, []string{"a:1", "b:2"}) || c.Topic != "t" || c.Group != DefaultGroup || c.MaxRows != 7 ||
		c.Linger != 3*time.Second || c.MaxBytes != DefaultMaxBytes || len(c.RoutePatterns) != 2 || !c.Redaction.Emails {
		t.Fatalf("parsed config %+v", c)
	}
	if got := c.withDefaults().DLQTopic; got != "t.dlq" {
		t.Fatalf("DLQ topic %q; want t.dlq", got)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(mod func(*Config), want string) {
		t.Helper()
		c := DefaultConfig()
		c.Kafka.Brokers = []string{"k:9092"}
		mod(&c)
		err := c.Validate()
		if want == "" {
			if err != nil {
				t.Fatalf("Validate() = %v; want nil", err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate() = %v; want an error containing %q", err, want)
		}
		if _, err := New(c, memsink.New(), nil, nil); err == nil {
			t.Fatal("New accepted a config Validate refuses")
		}
	}
	f(func(*Config) {}, "")
	f(func(c *Config) { c.Kafka.Brokers = nil }, "no Kafka brokers")
	f(func(c *Config) { c.Kafka.Brokers = []string{"k"} }, "not host:port")
	f(func(c *Config) { c.MaxRows = 0 }, "must be positive")
	f(func(c *Config) { c.SealInterval = 0 }, "must not be zero")
	f(func(c *Config) { c.SealInterval = -1 }, "")
	f(func(c *Config) { c.Kafka.Auth.SASLUser = "u" }, "no SASL mechanism")
	f(func(c *Config) { c.DLQTopic = "trace-items" }, "must differ")
	f(func(c *Config) { c.MaxRows = -1 }, "must be positive")
	f(func(c *Config) { c.RetryMin, c.RetryMax = time.Second, time.Millisecond }, "retry max")
	f(func(c *Config) { c.Redaction.QueryParams = []string{""} }, "empty query parameter")
	c := DefaultConfig()
	c.RoutePatterns = []string{"no-slash"}
	if _, err := New(c, memsink.New(), nil, nil); err == nil {
		t.Fatal("New accepted a route pattern without a leading slash")
	}
	if _, err := New(DefaultConfig(), nil, nil, nil); err == nil {
		t.Fatal("New accepted a nil sink")
	}
}

// Two processors on one registry share the metrics instead of panicking.
func TestRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	for i := range 2 {
		if _, err := New(DefaultConfig(), memsink.New(), nil, reg); err != nil {
			t.Fatalf("processor %d: %v", i, err)
		}
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}
