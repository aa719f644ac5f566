package producer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/schemas"
)

const testToken = "s3cret-ingest-token"

type ingestEnv struct {
	addrs []string
	url   string
	stop  func() // closes the Kafka cluster
}

// newIngestEnv starts kfake, a Publisher and the ingest handler behind a
// loopback HTTP server.
func newIngestEnv(tb testing.TB, mutate func(*IngestConfig)) *ingestEnv {
	tb.Helper()
	c := newCluster(tb)
	p := newPublisher(tb, c.ListenAddrs(), func(c *Config) { c.DialTimeout = 500 * time.Millisecond })
	cfg := DefaultIngestConfig()
	cfg.Tokens = []string{testToken}
	if mutate != nil {
		mutate(&cfg)
	}
	in, err := NewIngest(cfg, p, testLogger(tb), prometheus.NewRegistry())
	if err != nil {
		tb.Fatalf("NewIngest: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(IngestPath, in)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return &ingestEnv{addrs: c.ListenAddrs(), url: srv.URL + IngestPath, stop: c.Close}
}

type resp struct {
	code int
	hdr  http.Header
	body map[string]any
}

func (e *ingestEnv) post(tb testing.TB, body []byte, hdr ...string) resp {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8") // what fetch() sends for a string
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Content-Length" && hdr[i+1] == "" { // unknown length: chunked
			req.ContentLength = -1
			req.Body = io.NopCloser(bytes.NewReader(body))
			continue
		}
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	return do(tb, req)
}

func do(tb testing.TB, req *http.Request) resp {
	tb.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := resp{code: res.StatusCode, hdr: res.Header}
	if err := json.Unmarshal(b, &r.body); err != nil {
		tb.Fatalf("answer %d is not a JSON object: %q", res.StatusCode, b)
	}
	return r
}

type fixture struct {
	Name string `json:"name"`
	Raw  string `json:"raw"`
}

func loadFixtures(tb testing.TB) []fixture {
	tb.Helper()
	// The runtime's own output, shared with the schemas tests.
	f, err := os.Open(filepath.Join("..", "..", "shared", "fixtures", "traceitems.jsonl"))
	if err != nil {
		tb.Fatalf("open TraceItem fixtures: %v", err)
	}
	defer f.Close()
	var out []fixture
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var fx fixture
		if err := json.Unmarshal(sc.Bytes(), &fx); err != nil {
			tb.Fatal(err)
		}
		out = append(out, fx)
	}
	if len(out) == 0 {
		tb.Fatal("no fixtures")
	}
	return out
}

// rawItems splits a batch into each item's exact bytes.
func rawItems(tb testing.TB, body []byte) [][]byte {
	tb.Helper()
	rd := schemas.NewReader(bytes.NewReader(body))
	var out [][]byte
	for {
		var t schemas.TraceItem
		raw, err := rd.Next(&t)
		if err == io.EOF {
			return out
		}
		if err != nil {
			tb.Fatalf("fixture does not decode: %v", err)
		}
		out = append(out, bytes.Clone(raw))
	}
}

func accepted(tb testing.TB, r resp, n int) {
	tb.Helper()
	if r.code != http.StatusAccepted || r.body["accepted"] != float64(n) {
		tb.Fatalf("answer %d %v; want 202 {accepted: %d}", r.code, r.body, n)
	}
}

// TestIngestFixturesVerbatim posts every real Tail Worker body as the
// runtime sent it and checks the records carry each item's exact bytes.
func TestIngestFixturesVerbatim(t *testing.T) {
	e := newIngestEnv(t, nil)
	var want [][]byte
	for _, fx := range loadFixtures(t) {
		items := rawItems(t, []byte(fx.Raw))
		accepted(t, e.post(t, []byte(fx.Raw)), len(items))
		want = append(want, items...)
	}
	recs := consume(t, e.addrs, len(want))
	got := map[string]int{}
	for _, r := range recs {
		got[string(r.Value)]++
	}
	for _, w := range want {
		if got[string(w)] == 0 {
			t.Errorf("item not published verbatim: %.200s", w)
		}
		got[string(w)]--
	}
}

func genBody(tb testing.TB, n int, ndjson bool) ([]byte, [][]byte) {
	tb.Helper()
	seed := uint64(n) * 2
	if ndjson {
		seed++
	}
	g, err := NewGenerator(GenConfig{Seed: seed, Start: time.Unix(1795312410, 0)})
	if err != nil {
		tb.Fatal(err)
	}
	var body []byte
	var items [][]byte
	if !ndjson {
		body = append(body, '[')
	}
	for i := range n {
		if i > 0 {
			if ndjson {
				body = append(body, '\n')
			} else {
				body = append(body, ',')
			}
		}
		start := len(body)
		body, _ = g.Next(body)
		items = append(items, bytes.Clone(body[start:]))
	}
	if !ndjson {
		body = append(body, ']')
	} else {
		body = append(body, '\n')
	}
	return body, items
}

func gz(tb testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		tb.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

func TestIngestFormats(t *testing.T) {
	e := newIngestEnv(t, nil)
	arr, arrItems := genBody(t, 20, false)
	nd, ndItems := genBody(t, 15, true)
	accepted(t, e.post(t, arr, "Content-Type", "application/json"), 20)
	accepted(t, e.post(t, nd, "Content-Type", "application/x-ndjson"), 15)
	accepted(t, e.post(t, nd, "Content-Type", ""), 15) // detected
	accepted(t, e.post(t, gz(t, arr), "Content-Encoding", "gzip"), 20)
	accepted(t, e.post(t, []byte("[]")), 0)
	recs := consume(t, e.addrs, 70)
	got := map[string]int{}
	for _, r := range recs {
		got[string(r.Value)]++
		var it schemas.TraceItem
		if err := schemas.Unmarshal(r.Value, &it); err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != it.Script() {
			t.Errorf("key %q; want %q", r.Key, it.Script())
		}
	}
	for _, w := range arrItems {
		if got[string(w)] != 2 {
			t.Errorf("array item published %d times; want 2 (plain and gzip)", got[string(w)])
		}
	}
	for _, w := range ndItems {
		if got[string(w)] != 2 {
			t.Errorf("NDJSON item published %d times; want 2", got[string(w)])
		}
	}
}

func TestIngestAuth(t *testing.T) {
	e := newIngestEnv(t, nil)
	body, _ := genBody(t, 1, false)
	f := func(name, auth string) {
		t.Helper()
		r := e.post(t, body, "Authorization", auth)
		if r.code != http.StatusUnauthorized || !strings.HasPrefix(r.hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: answer %d, WWW-Authenticate %q; want 401 with a Bearer challenge", name, r.code, r.hdr.Get("WWW-Authenticate"))
		}
	}
	f("none", "")
	f("wrong", "Bearer nope")
	f("prefix of the token", "Bearer "+testToken[:5])
	f("token plus a byte", "Bearer "+testToken+"x")
	f("basic scheme", "Basic "+testToken)
	f("bare token", testToken)
	accepted(t, e.post(t, body, "Authorization", "bearer "+testToken), 1)
	if n := endOffsets(t, e.addrs); n != 1 {
		t.Errorf("topic holds %d records; want only the authorised one", n)
	}
}

func TestIngestRejects(t *testing.T) {
	e := newIngestEnv(t, func(c *IngestConfig) { c.MaxBodyBytes = 64 << 10; c.MaxItems = 10 })
	ok, _ := genBody(t, 3, false)
	eleven, _ := genBody(t, 11, false)
	big, _ := genBody(t, 10, false)
	for len(big) <= 64<<10 { // ten items, padded past the limit with spaces
		big = append(big[:len(big)-1], append(bytes.Repeat([]byte{' '}, 8<<10), ']')...)
	}
	bomb := gz(t, append(append([]byte("["), bytes.Repeat([]byte{' '}, 10<<20)...), ']'))
	bad := []byte(`[{"outcome":"ok","event":null},{"outcome":"ok","event":null},{"event":null,"logs":[]},{"outcome":"ok"}]`)
	notJSON := []byte(`[{"outcome":"ok"},{"outcome":]`)

	f := func(name string, body []byte, wantCode int, wantIndex int, hdr ...string) {
		t.Helper()
		r := e.post(t, body, hdr...)
		if r.code != wantCode {
			t.Errorf("%s: answer %d %v; want %d", name, r.code, r.body, wantCode)
			return
		}
		if msg, _ := r.body["error"].(string); msg == "" {
			t.Errorf("%s: no error message in %v", name, r.body)
		}
		if wantIndex >= 0 && r.body["index"] != float64(wantIndex) {
			t.Errorf("%s: index %v; want %d (%v)", name, r.body["index"], wantIndex, r.body)
		}
	}
	f("body too large", big, http.StatusRequestEntityTooLarge, -1)
	f("body too large, chunked", big, http.StatusRequestEntityTooLarge, -1, "Content-Length", "")
	f("gzip bomb", bomb, http.StatusRequestEntityTooLarge, -1, "Content-Encoding", "gzip")
	f("too many items", eleven, http.StatusRequestEntityTooLarge, -1)
	f("invalid third item", bad, http.StatusBadRequest, 2)
	f("broken JSON in second item", notJSON, http.StatusBadRequest, 1)
	f("empty body", nil, http.StatusBadRequest, -1)
	f("not gzip", ok, http.StatusBadRequest, -1, "Content-Encoding", "gzip")
	f("xml", ok, http.StatusUnsupportedMediaType, -1, "Content-Type", "application/xml")
	f("brotli", ok, http.StatusUnsupportedMediaType, -1, "Content-Encoding", "br")

	r := e.post(t, []byte("{\"outcome\":\"ok\"}\n{\"outcome\":\"ok\"}\n\n{\"logs\":[]}\n"), "Content-Type", "application/x-ndjson")
	if r.code != http.StatusBadRequest || r.body["index"] != float64(2) || r.body["line"] != float64(4) {
		t.Errorf("bad NDJSON line: answer %d %v; want 400 with index 2, line 4", r.code, r.body)
	}

	req, _ := http.NewRequest(http.MethodGet, e.url, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if r := do(t, req); r.code != http.StatusMethodNotAllowed || r.hdr.Get("Allow") != http.MethodPost {
		t.Errorf("GET: answer %d Allow %q; want 405 POST", r.code, r.hdr.Get("Allow"))
	}
	if n := endOffsets(t, e.addrs); n != 0 {
		t.Fatalf("rejected requests published %d records; want none", n)
	}
	accepted(t, e.post(t, ok), 3)
	if n := endOffsets(t, e.addrs); n != 3 {
		t.Fatalf("topic holds %d records; want 3", n)
	}
}

// TestIngestItemTooLargeForKafka: an item the codec accepts (under 1 MiB)
// but beyond one Kafka record is a 413 naming it, and nothing is published.
func TestIngestItemTooLargeForKafka(t *testing.T) {
	e := newIngestEnv(t, nil)
	msg := strings.Repeat("x", 1_010_000)
	body := []byte(`[{"outcome":"ok","event":null},{"outcome":"ok","event":null,"logs":[{"message":["` + msg + `"],"level":"log","timestamp":1}]}]`)
	r := e.post(t, body)
	if r.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("answer %d %v; want 413", r.code, r.body)
	}
	if r.body["index"] != float64(1) {
		t.Errorf("answer %v does not name item 1", r.body)
	}
	if n := endOffsets(t, e.addrs); n != 0 {
		t.Errorf("the rejected request published %d records", n)
	}
}

// TestIngestKafkaDown: when Kafka cannot take the items, 503 with
// Retry-After, within the publish timeout.
func TestIngestKafkaDown(t *testing.T) {
	e := newIngestEnv(t, func(c *IngestConfig) { c.PublishTimeout = time.Second; c.RetryAfter = 7 * time.Second })
	body, _ := genBody(t, 5, false)
	accepted(t, e.post(t, body), 5)
	e.stop()
	start := time.Now()
	r := e.post(t, body)
	if r.code != http.StatusServiceUnavailable || r.hdr.Get("Retry-After") != "7" {
		t.Fatalf("answer %d Retry-After %q %v; want 503 with Retry-After 7", r.code, r.hdr.Get("Retry-After"), r.body)
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("503 took %s; want about the 1s publish timeout", el)
	}
}

// TestIngestTokenRotation replaces the tokens file and waits (polling) for
// the new token to be accepted and the old one refused.
func TestIngestTokenRotation(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	write := func(s string) {
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write("# rotated monthly\nold-token\n\n")
	e := newIngestEnv(t, func(c *IngestConfig) { c.Tokens = nil; c.TokensFile = file; c.TokensReload = 10 * time.Millisecond })
	body, _ := genBody(t, 1, false)
	accepted(t, e.post(t, body, "Authorization", "Bearer old-token"), 1)
	if r := e.post(t, body, "Authorization", "Bearer new-token"); r.code != http.StatusUnauthorized {
		t.Fatalf("new token before rotation: %d", r.code)
	}
	write("new-token\n")
	testenv.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
		return e.post(t, body, "Authorization", "Bearer new-token").code == http.StatusAccepted
	}, "new token not accepted 5s after the file changed")
	if r := e.post(t, body, "Authorization", "Bearer old-token"); r.code != http.StatusUnauthorized {
		t.Errorf("old token after rotation: %d; want 401", r.code)
	}
	write("   \n") // an empty file keeps the previous tokens
	for range 5 {
		accepted(t, e.post(t, body, "Authorization", "Bearer new-token"), 1)
	}
}

func TestIngestConfigValidate(t *testing.T) {
	f := func(name string, mutate func(*IngestConfig), ok bool) {
		t.Helper()
		c := DefaultIngestConfig()
		c.Tokens = []string{"t"}
		mutate(&c)
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("%s: Validate() = %v; want ok=%v", name, err, ok)
		}
	}
	f("defaults", func(*IngestConfig) {}, true)
	f("no token", func(c *IngestConfig) { c.Tokens = nil }, false)
	f("file only", func(c *IngestConfig) { c.Tokens = nil; c.TokensFile = "/x" }, true)
	f("blank token", func(c *IngestConfig) { c.Tokens = []string{" "} }, false)
	f("zero body", func(c *IngestConfig) { c.MaxBodyBytes = 0 }, false)
	f("zero items", func(c *IngestConfig) { c.MaxItems = 0 }, false)
	f("zero timeout", func(c *IngestConfig) { c.PublishTimeout = 0 }, false)
}
