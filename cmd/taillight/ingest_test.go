package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/taillight/taillight/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for a command's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newKafka(t *testing.T, topic string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

var listenRE = regexp.MustCompile(`msg="ingest listening" addr=(\S+)`)

// startIngest runs `taillight ingest` until the returned cancel is called;
// wait returns its exit status.
func startIngest(t *testing.T, brokers []string, token string, extra ...string) (base string, stderr *syncBuffer, cancel func(), wait func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr = &syncBuffer{}
	args := append([]string{"ingest", "-listen", "127.0.0.1:0", "-kafka.brokers", strings.Join(brokers, ","),
		"-kafka.topic", "ingest-cmd", "-ingest.token", token}, extra...)
	done := make(chan int, 1)
	go func() { done <- runMain(ctx, args, stdio{strings.NewReader(""), io.Discard, stderr}) }()
	var code *int
	wait = func() int {
		if code == nil {
			select {
			case c := <-done:
				code = &c
			case <-time.After(20 * time.Second):
				t.Fatalf("ingest did not stop; stderr:\n%s", stderr)
			}
		}
		return *code
	}
	t.Cleanup(func() { cancel(); wait() })
	var addr string
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool {
		if m := listenRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			return true
		}
		select {
		case c := <-done:
			code = &c
			t.Fatalf("ingest exited with %d; stderr:\n%s", c, stderr)
		default:
		}
		return false
	}, "ingest not listening; stderr:\n%s", stderr)
	return "http://" + addr, stderr, cancel, wait
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func postItems(url, token string, body []byte) (int, string, error) {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

const sampleItems = `[{"wallTime":3,"cpuTime":1,"outcome":"ok","scriptName":"a","eventTimestamp":1795312410158,"event":{"request":{"url":"https://a.example/x","method":"GET","headers":{}},"response":{"status":200}}},` +
	`{"wallTime":3,"cpuTime":1,"outcome":"exception","scriptName":"b","eventTimestamp":1795312410158,"event":null}]`

// TestIngestCommand runs the command on loopback against kfake: POST, the
// probes, metrics, and that the token never reaches the log.
func TestIngestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the ingest command")
	}
	c := newKafka(t, "ingest-cmd")
	const token = "cmd-test-token-0123456789"
	base, stderr, cancel, wait := startIngest(t, c.ListenAddrs(), token)
	code, body, err := postItems(base+"/v1/traces", token, []byte(sampleItems))
	if err != nil || code != http.StatusAccepted || !strings.Contains(body, `"accepted":2`) {
		t.Fatalf("POST: %d %s %v", code, body, err)
	}
	if code, _, _ := postItems(base+"/v1/traces", "wrong", []byte(sampleItems)); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", code)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, base+p); code != http.StatusOK {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}
	_, metrics := get(t, base+"/metrics")
	for _, m := range []string{`taillight_ingest_requests_total{code="202"} 1`, `taillight_ingest_items_total 2`, `taillight_producer_records_total{result="ok"} 2`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics lack %q", m)
		}
	}
	c.Close()
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with Kafka gone: %d %s", code, body)
	}
	cancel()
	if code := wait(); code != exitOK {
		t.Errorf("exit %d; stderr:\n%s", code, stderr)
	}
	if strings.Contains(stderr.String(), token) {
		t.Error("the token appears in the log")
	}
}

// TestIngestCommandDrains: a request waiting for Kafka's acks when SIGTERM
// arrives is still answered 202 before the command exits.
func TestIngestCommandDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the ingest command")
	}
	c := newKafka(t, "ingest-cmd")
	const token = "drain-token"
	base, stderr, cancel, wait := startIngest(t, c.ListenAddrs(), token)
	if code, body, err := postItems(base+"/v1/traces", token, []byte(sampleItems)); code != http.StatusAccepted {
		t.Fatalf("warm-up POST: %d %s %v", code, body, err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		select {
		case held <- struct{}{}:
		default:
		}
		<-release
		return nil, nil, false
	})
	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		code, body, err := postItems(base+"/v1/traces", token, []byte(sampleItems))
		res <- result{code, body, err}
	}()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("produce request never reached Kafka")
	}
	cancel() // SIGTERM while the request waits for its acks
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool {
		return strings.Contains(stderr.String(), "draining in-flight requests")
	}, "no shutdown log line")
	once.Do(func() { close(release) })
	r := <-res
	if r.err != nil || r.code != http.StatusAccepted {
		t.Fatalf("in-flight request: %d %s %v; want 202", r.code, r.body, r.err)
	}
	if code := wait(); code != exitOK {
		t.Errorf("exit %d; stderr:\n%s", code, stderr)
	}
}

func TestIngestCommandUsage(t *testing.T) {
	f := func(want int, args ...string) {
		t.Helper()
		var stderr bytes.Buffer
		if code := runMain(context.Background(), append([]string{"ingest"}, args...), stdio{nil, io.Discard, &stderr}); code != want {
			t.Errorf("ingest %v: exit %d; want %d (%s)", args, code, want, stderr.String())
		}
	}
	t.Setenv("TAILLIGHT_INGEST_TOKEN", "")
	f(exitUsage, "-kafka.brokers", "127.0.0.1:1")                                         // no token
	f(exitUsage, "-ingest.token", "x")                                                    // no brokers
	f(exitUsage, "-ingest.token", "x", "-kafka.brokers", "h:1", "-ingest.max-items", "0") // bad limit
	f(exitOK, "-h")
}
