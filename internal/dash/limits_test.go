package dash

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taillight/taillight/internal/testenv"
)

// serveAs serves a dashboard with cfg on e's database, connected as user.
func (e *env) serveAs(tb testing.TB, user string, cfg Config) (*Server, string) {
	tb.Helper()
	cfg.Database = e.db
	s, err := New(cfg, testenv.OpenClickHouse(tb, sharedClickHouse(tb).Addr(), user, e.db), nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(s)
	tb.Cleanup(hs.Close)
	return s, hs.URL
}

func postSQL(tb testing.TB, base, sql string, hdr ...string) (int, []byte, apiResult) {
	tb.Helper()
	body, _ := json.Marshal(map[string]string{"sql": sql})
	req, _ := http.NewRequest(http.MethodPost, base+"/api/sql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r apiResult
	if err := json.Unmarshal(b, &r); err != nil {
		tb.Fatalf("POST /api/sql: %d %q: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, b, r
}

// TestLimitsAsReadonlyUser: connected as the local server's readonly user
// (profile readonly=1, which makes ClickHouse ignore every setting the
// dashboard sends), -dash.max-rows, -dash.max-response-bytes and
// -dash.max-execution-time still hold.
func TestLimitsAsReadonlyUser(t *testing.T) {
	e := newEnv(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	cfg := DefaultConfig()
	cfg.MaxRows = 5
	cfg.MaxResponseBytes = 64 << 10
	cfg.MaxExecutionTime = time.Second
	s, url := e.serveAs(t, "readonly", cfg)

	// The premise: the server ignores the dashboard's settings for this
	// user, and applies them for a read-write one.
	ignored, err := s.IgnoredSettings(t.Context())
	if err != nil || !strings.Contains(strings.Join(ignored, " "), "max_result_rows=5") {
		t.Errorf("IgnoredSettings as readonly = %v, %v; want max_result_rows among them", ignored, err)
	}
	rw, _ := e.serveAs(t, "default", cfg)
	if ignored, err := rw.IgnoredSettings(t.Context()); err != nil || len(ignored) != 0 {
		t.Errorf("IgnoredSettings as default = %v, %v; want none", ignored, err)
	}

	t.Run("rows", func(t *testing.T) {
		code, _, r := postSQL(t, url, "SELECT arrayJoin(range(100)) AS n")
		if code != 200 || len(r.Rows) != 5 || !r.Truncated || r.Limit != "rows" {
			t.Fatalf("%d, %d rows, truncated %v, limit %q, %q; want 5 rows cut by the row limit", code, len(r.Rows), r.Truncated, r.Limit, r.Error)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		big := DefaultConfig()
		big.MaxResponseBytes = 64 << 10
		_, url := e.serveAs(t, "readonly", big)
		code, body, r := postSQL(t, url, "SELECT arrayStringConcat(arrayMap(x -> 'xxxxxxxxxx', range(1000))) AS s FROM (SELECT arrayJoin(range(1000)))")
		if code != 200 || !r.Truncated || r.Limit != "bytes" || len(r.Rows) == 0 || len(r.Rows) > 7 {
			t.Fatalf("%d, %d rows, truncated %v, limit %q, %q; want about 6 rows cut by the size limit", code, len(r.Rows), r.Truncated, r.Limit, r.Error)
		}
		if len(body) > 64<<10+4096 {
			t.Errorf("answer of %d bytes; want at most the 64 KiB cap and its envelope", len(body))
		}
	})
	t.Run("600 MB result", func(t *testing.T) {
		// Six UNION ALL parts of 1,000 rows × 100 KB: the answer stops at
		// the cap and comes back at once.
		big := DefaultConfig()
		big.MaxResponseBytes = 1 << 20
		_, url := e.serveAs(t, "readonly", big)
		// (18.16 has no repeat(); the 100 KB string is built once.)
		part := "SELECT s FROM (SELECT arrayJoin(range(1000))) CROSS JOIN (SELECT arrayStringConcat(arrayMap(x -> 'yyyyyyyyyy', range(10000))) AS s)"
		var peak atomic.Uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() { // the test process's heap while the dashboard answers
			defer close(sampled)
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > peak.Load() {
					peak.Store(ms.HeapAlloc)
				}
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
		start := time.Now()
		code, body, r := postSQL(t, url, strings.Repeat(part+" UNION ALL ", 5)+part)
		close(stop)
		<-sampled
		if code != 200 || !r.Truncated || r.Limit != "bytes" || len(body) > 1<<20+4096 {
			t.Fatalf("%d, %d bytes, truncated %v, limit %q, %q; want at most 1 MiB, cut by the size limit", code, len(body), r.Truncated, r.Limit, r.Error)
		}
		t.Logf("answered %d bytes (%d rows) in %s; peak heap %d MiB", len(body), len(r.Rows), time.Since(start).Round(time.Millisecond), peak.Load()>>20)
	})
	t.Run("time", func(t *testing.T) {
		// sleep(3) runs 3 s on the server whatever its limits say; the
		// answer comes from the dashboard's own 1 s bound.
		start := time.Now()
		code, _, r := postSQL(t, url, "SELECT sleep(3) AS z")
		el := time.Since(start)
		if code != http.StatusGatewayTimeout || !strings.Contains(r.Error, "-dash.max-execution-time") || r.Limit != "time" {
			t.Fatalf("%d %q (limit %q) after %s; want 504 naming -dash.max-execution-time, limit time", code, r.Error, r.Limit, el)
		}
		if el >= 2900*time.Millisecond {
			t.Errorf("answered after %s; want about the 1 s limit, before the 3 s sleep ends", el)
		}
		// The dashboard still answers afterwards.
		if code, _, r := postSQL(t, url, "SELECT 1 AS one"); code != 200 || len(r.Rows) != 1 {
			t.Fatalf("after a timeout: %d %q", code, r.Error)
		}
	})
}

// TestSQLBoxOff: with -dash.sql=false the API refuses ad-hoc SQL (403) and
// tells the page to hide the box; saved queries still run.
func TestSQLBoxOff(t *testing.T) {
	e := newEnv(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	cfg := DefaultConfig()
	cfg.NoSQL = true
	_, url := e.serveAs(t, "readonly", cfg)
	code, _, r := postSQL(t, url, "SELECT 1")
	if code != http.StatusForbidden || !strings.Contains(r.Error, "-dash.sql=false") {
		t.Fatalf("%d %q; want 403 naming -dash.sql=false", code, r.Error)
	}
	resp, err := http.Get(url + "/api/queries")
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if meta["sql"] != false {
		t.Errorf("/api/queries sql = %v; want false", meta["sql"])
	}
	resp, err = http.Get(url + "/api/query/overview?" + e.rng().Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("saved query: %d; want 200", resp.StatusCode)
	}
}

// TestAuth: with a token, every page and API request needs the bearer
// token or basic auth with the user and the token as password.
func TestAuth(t *testing.T) {
	e := newEnv(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	cfg := DefaultConfig()
	cfg.AuthToken = "dash-s3cret"
	cfg.AuthUser = "ops"
	_, url := e.serveAs(t, "readonly", cfg)
	f := func(name, path string, set func(*http.Request), want int) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url+path, nil)
		if set != nil {
			set(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s %s: %d; want %d", name, path, resp.StatusCode, want)
		}
		if want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s: WWW-Authenticate %q; want a Basic challenge (browsers prompt)", name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	for _, path := range []string{"/", "/app.js", "/api/queries", "/api/filters"} {
		f("none", path, nil, 401)
		f("wrong bearer", path, bearer("dash-s3cre"), 401)
		f("basic, wrong user", path, basic("admin", "dash-s3cret"), 401)
		f("basic, wrong password", path, basic("ops", "nope"), 401)
		f("bearer", path, bearer("dash-s3cret"), 200)
		f("basic", path, basic("ops", "dash-s3cret"), 200)
	}
	if code, _, _ := postSQL(t, url, "SELECT 1"); code != 401 {
		t.Errorf("SQL without auth: %d; want 401", code)
	}
	if code, _, r := postSQL(t, url, "SELECT 1", "Authorization", "Bearer dash-s3cret"); code != 200 {
		t.Errorf("SQL with the token: %d %q", code, r.Error)
	}
}
