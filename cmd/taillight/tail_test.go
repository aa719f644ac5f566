package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/schemas"
)

func TestTailFlags(t *testing.T) {
	f := func(want string, args ...string) {
		t.Helper()
		var stderr bytes.Buffer
		code := runMain(context.Background(), append([]string{"tail"}, args...), stdio{strings.NewReader(""), io.Discard, &stderr})
		if code != exitUsage || !strings.Contains(stderr.String(), want) {
			t.Errorf("tail %q = %d, %q; want exit %d and %q", args, code, stderr.String(), exitUsage, want)
		}
	}
	f("status", "-status", "5yx")
	f("sampling rate", "-sampling-rate", "2")
	f("format", "-format", "yaml")
	f("-color", "-color", "sometimes")
	f("not defined", "-unredacted")
}

// TestTailCommand runs `taillight tail` against kfake: JSON output of the
// redacted item, stopped by -limit.
func TestTailCommand(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, schemas.DefaultTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := `{"event":{"request":{"url":"https://a.dev/u/0123456789abcdef0123456789abcdef","method":"GET","headers":{}},"response":{"status":503}},` +
		`"eventTimestamp":1795318800123,"logs":[],"exceptions":[],"scriptName":"shop","outcome":"ok","executionModel":"stateless"}`
	for _, v := range []string{"not json", rec} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: schemas.DefaultTopic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var out, stderr bytes.Buffer
	code := runMain(ctx, []string{"tail", "-kafka.brokers", strings.Join(c.ListenAddrs(), ","), "-from-beginning",
		"-format", "json", "-status", "5xx", "-script", "shop", "-limit", "1"}, stdio{strings.NewReader(""), &out, &stderr})
	if code != exitOK {
		t.Fatalf("tail = %d; stderr:\n%s", code, stderr.String())
	}
	var it schemas.TraceItem
	if err := schemas.Unmarshal(bytes.TrimSpace(out.Bytes()), &it); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if it.Event.Request.URL != "https://a.dev/u/REDACTED" {
		t.Errorf("URL %q: want it redacted", it.Event.Request.URL)
	}
	if !strings.Contains(stderr.String(), "offset 0: undecodable record") {
		t.Errorf("stderr lacks the poison-record warning:\n%s", stderr.String())
	}
}
