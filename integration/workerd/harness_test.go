package workerd

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taillight/taillight/internal/testenv"
)

// requireWorkerd returns the workerd binary. It skips the test when there is
// none (naming the install script), unless TAILLIGHT_E2E=1, where it fails.
func requireWorkerd(t testing.TB) string {
	t.Helper()
	return testenv.NeedWorkerd(t)
}

// post is one request received by the ingest stand-in.
type post struct {
	at     time.Time
	auth   string
	ctype  string
	body   []byte
	status int // what the stand-in answered
}

// ingest stands in for `taillight ingest`: it records every POST and answers
// with what decide returns (202 when decide is nil). decide may hijack the
// connection and return 0 to simulate a network error.
type ingest struct {
	srv    *httptest.Server
	decide func(w http.ResponseWriter, body []byte) int

	mu    sync.Mutex
	posts []post
}

func newIngest(t testing.TB, decide func(w http.ResponseWriter, body []byte) int) *ingest {
	t.Helper()
	in := &ingest{decide: decide}
	in.srv = httptest.NewServer(http.HandlerFunc(in.serve))
	t.Cleanup(in.srv.Close)
	return in
}

func (in *ingest) url() string { return in.srv.URL + "/v1/traces" }

func (in *ingest) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	status := http.StatusAccepted
	if in.decide != nil {
		status = in.decide(w, body)
	}
	in.mu.Lock()
	in.posts = append(in.posts, post{at: time.Now(), auth: r.Header.Get("Authorization"), ctype: r.Header.Get("Content-Type"), body: body, status: status})
	in.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
	}
}

func (in *ingest) snapshot() []post {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]post(nil), in.posts...)
}

// waitFor polls cond every 20ms until it holds or the deadline passes.
func waitFor(t testing.TB, wd *testenv.Workerd, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !testenv.Poll(within, 20*time.Millisecond, cond) {
		t.Fatalf("timed out after %s waiting for %s; workerd output:\n%s", within, what, wd.Output())
	}
}

// startWithTail runs producer with the repository's Tail Worker attached,
// forwarding to in with the given extra env.
func startWithTail(t testing.TB, bin, producerJS string, in *ingest, env map[string]string) *testenv.Workerd {
	t.Helper()
	bindings := map[string]string{"INGEST_URL": in.url(), "INGEST_TOKEN": testToken}
	for k, v := range env {
		bindings[k] = v
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	wd, err := testenv.StartWorkerd(ctx, testenv.WorkerdConfig{
		Binary:   bin,
		Producer: testenv.WorkerdWorker{Modules: []testenv.WorkerdModule{{Name: "producer.js", Source: producerJS}}},
		Tail: testenv.WorkerdWorker{
			Modules:  []testenv.WorkerdModule{testenv.CloudflareModule(t, "tail-worker.js"), testenv.CloudflareModule(t, "taillight-forward.js")},
			Bindings: bindings,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := wd.Close(); err != nil {
			t.Errorf("close workerd: %v", err)
		}
	})
	return wd
}

const testToken = "test-token-0123"

// client talks to workerd over loopback without keep-alive surprises.
var client = &http.Client{Timeout: 30 * time.Second}

// get sends GET to the exact request target pathQuery (no re-encoding by
// net/url) with the given headers, names sent as written.
func get(t testing.TB, base, pathQuery string, headers [][2]string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	path, query, _ := strings.Cut(pathQuery, "?")
	req := &http.Request{
		Method: http.MethodGet,
		URL:    &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: path, RawQuery: query},
		Header: http.Header{},
		Host:   u.Host,
	}
	for _, h := range headers {
		req.Header[h[0]] = append(req.Header[h[0]], h[1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", pathQuery, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d; want 200", pathQuery, res.StatusCode)
	}
}

// hijackClose drops the connection without an answer (a network error for
// the Tail Worker's fetch).
func hijackClose(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN
		}
		_ = conn.Close()
	}
}
