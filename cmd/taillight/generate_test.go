package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/schemas"
)

func runGen(t *testing.T, ctx context.Context, args ...string) (int, []byte, string) {
	t.Helper()
	var out bytes.Buffer
	stderr := &syncBuffer{}
	code := runMain(ctx, append([]string{"generate"}, args...), stdio{strings.NewReader(""), &out, stderr})
	return code, out.Bytes(), stderr.String()
}

func TestGenerateNDJSONDeterministic(t *testing.T) {
	args := []string{"-out", "ndjson", "-n", "500", "-seed", "11", "-start", "2026-11-22T03:00:00Z"}
	code, a, stderr := runGen(t, context.Background(), args...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "generated 500 events") {
		t.Errorf("no summary: %q", stderr)
	}
	_, b, _ := runGen(t, context.Background(), args...)
	if !bytes.Equal(a, b) {
		t.Fatal("same -seed and -start gave different bytes")
	}
	items, err := schemas.DecodeAll(a)
	if err != nil || len(items) != 500 {
		t.Fatalf("decoded %d items: %v", len(items), err)
	}
	start := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	for _, it := range items {
		if ts := time.UnixMilli(*it.EventTimestamp); ts.After(start.Add(time.Second)) || ts.Before(start.Add(-8*time.Minute)) {
			t.Fatalf("event time %s not in the 5 minutes before -start", ts)
		}
	}
}

func TestGenerateRate(t *testing.T) {
	if testing.Short() {
		t.Skip("paced run")
	}
	start := time.Now()
	code, out, stderr := runGen(t, context.Background(), "-out", "ndjson", "-n", "50", "-rate", "100")
	if code != exitOK || bytes.Count(out, []byte("\n")) != 50 {
		t.Fatalf("exit %d, %d lines: %s", code, bytes.Count(out, []byte("\n")), stderr)
	}
	if el := time.Since(start); el < 450*time.Millisecond {
		t.Errorf("50 events at 100/s took %s; want about 0.5s", el)
	}
}

// TestGenerateToIngest sends generated events through a running `taillight
// ingest` into kfake.
func TestGenerateToIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the ingest command")
	}
	c := newKafka(t, "ingest-cmd")
	const token = "gen-token"
	base, _, _, _ := startIngest(t, c.ListenAddrs(), token)
	t.Setenv("TAILLIGHT_INGEST_TOKEN", token)
	code, _, stderr := runGen(t, context.Background(), "-out", base+"/v1/traces", "-n", "250", "-batch", "40", "-gzip")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if n := countRecords(t, c.ListenAddrs(), "ingest-cmd", 250); n != 250 {
		t.Fatalf("%d records; want 250", n)
	}
	t.Setenv("TAILLIGHT_INGEST_TOKEN", "wrong")
	if code, _, stderr := runGen(t, context.Background(), "-out", base+"/v1/traces", "-n", "5"); code != exitError || !strings.Contains(stderr, "401") {
		t.Errorf("wrong token: exit %d: %s", code, stderr)
	}
}

func TestGenerateToKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("uses kfake")
	}
	c := newKafka(t, "gen-direct")
	code, _, stderr := runGen(t, context.Background(), "-kafka.brokers", strings.Join(c.ListenAddrs(), ","),
		"-kafka.topic", "gen-direct", "-n", "1000")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if n := countRecords(t, c.ListenAddrs(), "gen-direct", 1000); n != 1000 {
		t.Fatalf("%d records; want 1000", n)
	}
	addrs := strings.Join(c.ListenAddrs(), ",")
	c.Close()
	start := time.Now()
	code, _, stderr = runGen(t, context.Background(), "-kafka.brokers", addrs,
		"-kafka.topic", "gen-direct", "-n", "10", "-kafka.delivery-timeout", "1s", "-kafka.dial-timeout", "200ms")
	if code != exitError {
		t.Errorf("Kafka gone: exit %d; want %d: %s", code, exitError, stderr)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("Kafka gone: generate took %s to fail", el)
	}
}

func TestGenerateUsage(t *testing.T) {
	f := func(args ...string) {
		t.Helper()
		if code, _, stderr := runGen(t, context.Background(), args...); code != exitUsage {
			t.Errorf("generate %v: exit %d; want %d (%s)", args, code, exitUsage, stderr)
		}
	}
	f("-out", "kafka")
	f("-out", "ftp://x")
	f("-out", "http://127.0.0.1:1/v1/traces", "-ingest.token", "")
	f("-out", "ndjson", "-start", "yesterday")
	f("-out", "ndjson", "-n", "-1")
}

// countRecords consumes until want records arrived (or 10s passed).
func countRecords(t *testing.T, brokers []string, topic string, want int) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for n < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		for _, r := range fs.Records() {
			var it schemas.TraceItem
			if err := schemas.Unmarshal(r.Value, &it); err != nil {
				t.Fatalf("record does not decode: %v", err)
			}
			if string(r.Key) != it.Script() {
				t.Fatalf("key %q; want %q", r.Key, it.Script())
			}
			n++
		}
	}
	return n
}
