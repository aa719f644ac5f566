package producer

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/internal/testenv"
)

// TestIngestHostileCorpus posts, as the second item of a batch, each value
// a careless or hostile client may send. Refused ones get a 4xx naming
// item 1 (and the field, for a range), and nothing of the batch is
// published; accepted ones are published.
func TestIngestHostileCorpus(t *testing.T) {
	e := newIngestEnv(t, nil)
	now := time.Now().UnixMilli()
	const good = `{"outcome":"ok","scriptName":"api","eventTimestamp":1767225600000,"event":{"request":{"url":"https://a.example/x","method":"GET","headers":{}},"response":{"status":200}},"logs":[],"exceptions":[]}`
	item := func(fields string) string {
		return `{"outcome":"ok","scriptName":"api","eventTimestamp":1767225600000,"logs":[],"exceptions":[],` + fields + `}`
	}
	fetch := func(url, status string) string {
		return `"event":{"request":{"url":"` + url + `","method":"GET","headers":{}},"response":{"status":` + status + `}}`
	}
	long := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name  string
		item  string
		code  int
		field string // "" for none
		ctype string
	}{
		{"status 70000", item(fetch("https://a/x", "70000")), 400, "event.response.status", ""},
		{"status -1", item(fetch("https://a/x", "-1")), 400, "event.response.status", ""},
		{"status 99", item(fetch("https://a/x", "99")), 400, "event.response.status", ""},
		{"status 600", item(fetch("https://a/x", "600")), 400, "event.response.status", ""},
		{"status 100", item(fetch("https://a/x", "100")), 202, "", ""},
		{"status 599", item(fetch("https://a/x", "599")), 202, "", ""},
		{"no response", item(`"event":{"request":{"url":"https://a/x","method":"GET","headers":{}}}`), 202, "", ""},
		{"cpuTime 1e12", item(`"cpuTime":1e12`), 400, "cpuTime", ""},
		{"cpuTime one hour", item(`"cpuTime":3600000`), 202, "", ""},
		{"wallTime 1e12", item(`"wallTime":1e12`), 400, "wallTime", ""},
		{"wallTime negative", item(`"wallTime":-1`), 400, "", ""},
		{"eventTimestamp in 3000", `{"outcome":"ok","eventTimestamp":32503680000000}`, 400, "eventTimestamp", ""},
		{"eventTimestamp in 2014", `{"outcome":"ok","eventTimestamp":1388534400000}`, 400, "eventTimestamp", ""},
		{"eventTimestamp two days ahead", `{"outcome":"ok","eventTimestamp":` + strconv.FormatInt(now+48*3600_000, 10) + `}`, 400, "eventTimestamp", ""},
		{"eventTimestamp an hour ahead", `{"outcome":"ok","eventTimestamp":` + strconv.FormatInt(now+3600_000, 10) + `}`, 202, "", ""},
		{"eventTimestamp null", `{"outcome":"ok","eventTimestamp":null}`, 202, "", ""},
		{"scriptName 100 KB", `{"outcome":"ok","scriptName":"` + long(100<<10) + `"}`, 400, "scriptName", ""},
		{"scriptName 256 bytes", `{"outcome":"ok","scriptName":"` + long(256) + `"}`, 202, "", ""},
		{"outcome 10 KB", `{"outcome":"` + long(10<<10) + `"}`, 400, "outcome", ""},
		{"entrypoint 1 KB", item(`"entrypoint":"` + long(1024) + `"`), 400, "entrypoint", ""},
		{"scriptVersion tag 1 KB", item(`"scriptVersion":{"tag":"` + long(1024) + `"}`), 400, "scriptVersion.tag", ""},
		{"method 1 KB", item(`"event":{"request":{"url":"https://a/x","method":"` + long(1024) + `","headers":{}}}`), 400, "event.request.method", ""},
		{"log level 1 KB", `{"outcome":"ok","logs":[{"message":["x"],"level":"log","timestamp":1},{"message":["x"],"level":"` + long(1024) + `","timestamp":1}]}`, 400, "logs[1].level", ""},
		{"URL 20 KB", item(fetch("https://a/"+long(20<<10), "200")), 400, "event.request.url", ""},
		{"URL host 300 bytes", item(fetch("https://"+long(300)+"/x", "200")), 400, "event.request.url", ""},
		{"invalid UTF-8 in scriptName", "{\"outcome\":\"ok\",\"scriptName\":\"a\xff\"}", 400, "", ""},
		{"invalid UTF-8 in a log message", "{\"outcome\":\"ok\",\"logs\":[{\"message\":[\"a\xc3\x28\"],\"level\":\"log\",\"timestamp\":1}]}", 400, "", ""},
		{"escaped lone surrogate", `{"outcome":"ok","scriptName":"a\ud800","logs":[{"message":["b\udc00"],"level":"log","timestamp":1}]}`, 202, "", ""},
		{"item over 1 MiB", `{"outcome":"ok","logs":[{"message":["` + long(1<<20) + `"],"level":"log","timestamp":1}]}`, 413, "", ""},
		{"curl --data (a form type)", good, 202, "", "application/x-www-form-urlencoded"},
	}
	published := int64(0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := []string{}
			if c.ctype != "" {
				hdr = []string{"Content-Type", c.ctype}
			}
			r := e.post(t, []byte("["+good+","+c.item+"]"), hdr...)
			if r.code != c.code {
				t.Fatalf("answer %d %v; want %d", r.code, r.body, c.code)
			}
			if c.code == 202 {
				published += 2
				return
			}
			msg, _ := r.body["error"].(string)
			if r.body["index"] != float64(1) || !strings.Contains(msg, "item 1") {
				t.Errorf("answer %v does not name item 1", r.body)
			}
			if c.field != "" && (r.body["field"] != c.field || !strings.Contains(msg, c.field)) {
				t.Errorf("answer %v does not name field %s", r.body, c.field)
			}
			if strings.Contains(c.name, "UTF-8") && !strings.Contains(msg, "UTF-8") {
				t.Errorf("answer %v does not say UTF-8", r.body)
			}
		})
	}
	if n := endOffsets(t, e.addrs); n != published {
		t.Errorf("topic holds %d records; want %d (the accepted batches only)", n, published)
	}

	// The 415 answer says what is accepted, as the README does.
	r := e.post(t, []byte("["+good+"]"), "Content-Type", "multipart/form-data; boundary=x")
	if msg, _ := r.body["error"].(string); r.code != 415 || !strings.Contains(msg, "application/json") || !strings.Contains(msg, "read from the bytes") {
		t.Errorf("multipart: answer %d %v; want 415 naming the accepted types", r.code, r.body)
	}
}

// TestIngestInflightBudget: a request whose body is on its way holds its
// Content-Length of the budget; another that does not fit is answered 429
// with Retry-After at once; once the first is answered its bytes are free.
func TestIngestInflightBudget(t *testing.T) {
	c := newCluster(t)
	p := newPublisher(t, c.ListenAddrs(), nil)
	cfg := DefaultIngestConfig()
	cfg.Tokens = []string{testToken}
	cfg.MaxBodyBytes = 600 << 10
	cfg.MaxInflightBytes = 1 << 20
	cfg.RetryAfter = 3 * time.Second
	in, err := NewIngest(cfg, p, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)
	e := &ingestEnv{addrs: c.ListenAddrs(), url: srv.URL}

	body, _ := genBody(t, 400, false)
	for len(body) < 560<<10 {
		body = append(body[:len(body)-1], append([]byte(strings.Repeat(" ", 16<<10)), ']')...)
	}
	if len(body) > 600<<10 {
		t.Fatalf("test body of %d bytes is over the body limit", len(body))
	}
	// The first request sends its headers, then its body only when told.
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
	req, _ := http.NewRequest(http.MethodPost, srv.URL, pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	first := make(chan resp, 1)
	go func() { first <- do(t, req) }()
	testenv.Eventually(t, 20*time.Second, 5*time.Millisecond, func() bool { return in.inflight.Load() >= int64(len(body)) },
		"the first request never held its %d bytes of the budget", len(body))
	r := e.post(t, body)
	if r.code != http.StatusTooManyRequests || r.hdr.Get("Retry-After") != "3" {
		t.Fatalf("second request: answer %d Retry-After %q %v; want 429 with Retry-After 3", r.code, r.hdr.Get("Retry-After"), r.body)
	}
	if msg, _ := r.body["error"].(string); !strings.Contains(msg, "-ingest.max-inflight-bytes") {
		t.Errorf("429 answer %v does not name the flag", r.body)
	}
	small, _ := genBody(t, 5, false)
	accepted(t, e.post(t, small), 5) // what fits still goes through
	if _, err := pw.Write(body); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	accepted(t, <-first, 400)
	if n := in.inflight.Load(); n != 0 {
		t.Errorf("%d bytes still held after every request was answered", n)
	}
	accepted(t, e.post(t, body), 400)
	if n := endOffsets(t, e.addrs); n != 805 {
		t.Errorf("topic holds %d records; want 805", n)
	}
	if n := in.inflight.Load(); n != 0 {
		t.Errorf("%d bytes still held", n)
	}
}

// TestPublisherReadyNeedsTopic: Ready (ingest's /readyz) fails while the
// topic does not exist, saying so, and passes once it does.
func TestPublisherReadyNeedsTopic(t *testing.T) {
	c := newCluster(t)
	p := newPublisher(t, c.ListenAddrs(), func(c *Config) { c.Topic = "not-yet" })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := p.Ready(ctx); err == nil || !strings.Contains(err.Error(), "topic not-yet does not exist") {
		t.Fatalf("Ready without the topic = %v; want it to say the topic does not exist", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "not-yet"); err != nil {
		t.Fatal(err)
	}
	if err := p.Ready(ctx); err != nil {
		t.Fatalf("Ready with the topic = %v", err)
	}
}

// TestIngestTimeoutKeepsBudget: a request answered 503 on the publish
// timeout still has records in the client aliasing its body (an idempotent
// producer keeps them while Kafka is away); they keep their share of the
// budget, and the buffer is not reused, until each is acknowledged or
// failed: here when the publisher closes.
func TestIngestTimeoutKeepsBudget(t *testing.T) {
	c := newCluster(t)
	p := newPublisher(t, c.ListenAddrs(), func(c *Config) { c.DialTimeout = 200 * time.Millisecond })
	cfg := DefaultIngestConfig()
	cfg.Tokens = []string{testToken}
	cfg.PublishTimeout = 500 * time.Millisecond
	in, err := NewIngest(cfg, p, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)
	e := &ingestEnv{addrs: c.ListenAddrs(), url: srv.URL}
	body, _ := genBody(t, 50, false)
	accepted(t, e.post(t, body), 50)
	if n := in.InflightBytes(); n != 0 {
		t.Fatalf("%d bytes held after a 202", n)
	}
	c.Close()
	if r := e.post(t, body); r.code != http.StatusServiceUnavailable {
		t.Fatalf("Kafka down: answer %d %v; want 503", r.code, r.body)
	}
	if n := in.InflightBytes(); n < int64(len(body)) {
		t.Errorf("after the 503, %d bytes held; want the body's %d (its records are still in the client)", n, len(body))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p.Close(ctx) // gives up flushing after 1s and fails the records still buffered
	testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, func() bool { return in.InflightBytes() == 0 },
		"bytes still held after the publisher closed")
}
