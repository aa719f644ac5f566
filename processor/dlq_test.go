package processor

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/taillight/taillight/processor/proctest"
	"github.com/taillight/taillight/sinks/memsink"
)

// lockedBuffer is a log destination several goroutines write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDLQHostileRecords plants secrets in records that cannot be decoded
// (a card number cut short by a JSON error, a JWT as a bare value, secrets
// in wrong types, in invalid UTF-8 and out-of-range values) and records
// with values out of range. Each lands in the DLQ with its reason; no
// header, no value and no log line carries any piece of a secret; the DLQ
// records are stamped when they were dead-lettered, the source timestamp
// kept as a header.
func TestDLQHostileRecords(t *testing.T) {
	const (
		card = "4111111111111111"
		jwt  = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	)
	// Pieces that must appear nowhere: 8 digits of the card, and the JWT's
	// payload and signature (its header is {"alg":"HS256"}, no secret).
	pieces := []string{card[:8], "eyJzdWIiOiIx", "MjM0NTY3ODkw", "dozjgNry", "PlFUP0TH"}
	hostile := []struct {
		value, reason string
	}{
		{`{"outcome":{"url":"https://x/` + card + `"}}`, ReasonWrongType},
		{`{"outcome":"ok","event":{"request":{"url":"https://x/` + card, ReasonBadJSON},
		{`{"outcome":"ok","scriptName":` + jwt + `}`, ReasonBadJSON},
		{`{"outcome":"ok","scriptName":` + card + `}`, ReasonWrongType},
		{`{"outcome":"ok","event":{"request":{"url":"https://x/","method":"GET","headers":{"authorization":` + card + `}}}}`, ReasonWrongType},
		{`{"` + jwt + `":`, ReasonBadJSON},
		{`{"outcome":"ok","eventTimestamp":` + card + `}`, ReasonOutOfRange},
		{`{"outcome":"ok","cpuTime":` + card + `}`, ReasonOutOfRange},
		{"{\"outcome\":\"ok\",\"scriptName\":\"\xff" + card + "\"}", ReasonInvalid},
		{`{"outcome":"ok","scriptName":"` + jwt + strings.Repeat("x", 300) + `"}`, ReasonOutOfRange},
		{`{"outcome":"ok","event":{"request":{"url":"https://x/","method":"GET","headers":{}},"response":{"status":70000}}}`, ReasonOutOfRange},
		{`{"outcome":"` + strings.Repeat("o", 100) + `"}`, ReasonOutOfRange},
		{`{"outcome":"ok","eventTimestamp":32503680000000}`, ReasonOutOfRange},
	}
	c := cluster(t, 1)
	addrs := c.ListenAddrs()
	g := proctest.New(1)
	g.Generate(t, rand.New(rand.NewPCG(11, 12)), 20, 0)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC) // source timestamps years old
	for _, h := range hostile {
		g.Add(proctest.Record{Partition: 0, Value: []byte(h.value), Timestamp: old}, false)
		g.Poison[h.reason]++
	}
	g.Generate(t, rand.New(rand.NewPCG(13, 14)), 20, 0)
	produce(t, addrs, g.Records)

	var logs lockedBuffer
	reg := prometheus.NewRegistry()
	s := memsink.New()
	cfg := testConfig(addrs, "hostile")
	cfg.Limits.MaxEventAhead = 24 * time.Hour // real time here
	p, err := New(cfg, s, slog.New(slog.NewTextHandler(&logs, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{p: p, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	began := time.Now()
	waitFor(t, 20*time.Second, "every record polled", func() bool { return p.polled.Load() == int64(len(g.Records)) })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	g.Check(t, s)

	recs := dlqRecords(t, addrs, len(hostile))
	if len(recs) != len(hostile) {
		t.Fatalf("%d DLQ records; want %d", len(recs), len(hostile))
	}
	for _, rec := range recs {
		h := map[string]string{}
		var all []byte
		for _, kv := range rec.Headers {
			h[kv.Key] = string(kv.Value)
			all = append(append(all, kv.Key...), kv.Value...)
		}
		off, _ := strconv.Atoi(h[DLQHeaderOffset])
		want := hostile[off-20].reason
		if h[DLQHeaderReason] != want {
			t.Errorf("offset %d: reason %q; want %q (error %q)", off, h[DLQHeaderReason], want, h[DLQHeaderError])
		}
		if h[DLQHeaderError] == "" {
			t.Errorf("offset %d: no error header", off)
		}
		t.Logf("offset %d: %s: %s", off, h[DLQHeaderReason], h[DLQHeaderError])
		for _, p := range pieces {
			if bytes.Contains(all, []byte(p)) {
				t.Errorf("offset %d: headers carry %q: %q", off, p, all)
			}
		}
		for _, sec := range []string{card, jwt[strings.IndexByte(jwt, '.')+1:]} {
			if bytes.Contains(rec.Value, []byte(sec)) {
				t.Errorf("offset %d: value carries a secret: %q", off, rec.Value)
			}
		}
		if h[DLQHeaderTimestamp] != strconv.FormatInt(old.UnixMilli(), 10) {
			t.Errorf("offset %d: source timestamp header %q; want %d", off, h[DLQHeaderTimestamp], old.UnixMilli())
		}
		if rec.Timestamp.Before(began.Add(-time.Second)) {
			t.Errorf("offset %d: DLQ record stamped %s; want the time it was dead-lettered (after %s)", off, rec.Timestamp, began)
		}
	}
	if n := testutil.ToFloat64(p.m.dlq.WithLabelValues(ReasonOutOfRange)); n != float64(g.Poison[ReasonOutOfRange]) {
		t.Errorf("taillight_processor_dlq_total{reason=out_of_range} = %g; want %d", n, g.Poison[ReasonOutOfRange])
	}
	out := logs.String()
	if !strings.Contains(out, "record sent to the dead-letter topic") {
		t.Errorf("no log line for the DLQ records:\n%s", out)
	}
	for _, p := range pieces {
		if strings.Contains(out, p) {
			t.Errorf("the log carries %q:\n%s", p, out)
		}
	}
}
