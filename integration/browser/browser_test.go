package browser

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
)

// newBrowser starts headless Chromium (bin) for the test; the context
// ends with the test or after limit.
func newBrowser(t *testing.T, bin string, limit time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 2400),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(cancelCtx)
	ctx, cancel := context.WithTimeout(ctx, limit)
	t.Cleanup(cancel)
	return ctx
}

// listenErrors collects the page's uncaught JavaScript exceptions.
func listenErrors(ctx context.Context, t *testing.T, bin string) chan string {
	t.Helper()
	jsErrors := make(chan string, 16)
	if err := chromedp.Listen(ctx, func(ev any) {
		if ex, ok := ev.(*runtime.EventExceptionThrown); ok {
			select {
			case jsErrors <- exceptionText(ex.ExceptionDetails):
			default:
			}
		}
	}); err != nil {
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	return jsErrors
}

// findChromium returns the browser to drive: $TAILLIGHT_CHROMIUM, or
// Debian's chromium (deployments/local/install-chromium.sh installs it).
func findChromium() (string, error) {
	if p := os.Getenv("TAILLIGHT_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no chromium on PATH")
}

// artifactDir is <checkout>/artifacts (git-ignored), made if missing.
func artifactDir(tb testing.TB) string {
	tb.Helper()
	root := devenv.CheckoutDir()
	if root == "" {
		tb.Fatal("not in a taillight checkout")
	}
	out := filepath.Join(root, "artifacts")
	if err := os.MkdirAll(out, 0o755); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestBrowser opens the dashboard in headless Chromium against a real
// ClickHouse holding the known data set, waits for every panel to render,
// checks the numbers on the page against ClickHouse, drives a filter and
// the SQL box, and saves a screenshot as artifacts/dash-browser.png.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Chromium and a real ClickHouse server; skipped under -short")
	}
	bin, err := findChromium()
	if err != nil {
		if testenv.E2E() {
			t.Fatalf("TAILLIGHT_E2E=1 and %v: run deployments/local/install-chromium.sh (apt-get install chromium)", err)
		}
		t.Skipf("%v: run deployments/local/install-chromium.sh (apt-get install chromium), or set TAILLIGHT_E2E=1 to make this a failure", err)
	}
	// Recent data, so the page's own "last hour" would show it too.
	base := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Minute)
	e := newEnv(t, base)
	from, to := base.Unix(), base.Unix()+600

	ctx := newBrowser(t, bin, 90*time.Second)
	jsErrors := listenErrors(ctx, t, bin)

	pageURL := fmt.Sprintf("%s/#from=%d&to=%d&refresh=0", e.url, from, to)
	allOK := `document.body.dataset.loads >= 1 && [...document.querySelectorAll('#panels .panel')].length > 0 && [...document.querySelectorAll('#panels .panel')].every((p) => p.dataset.state === 'ok')`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(pageURL),
		chromedp.Poll[chromedp.Void](allOK, chromedp.WithPollingTimeout(30*time.Second)),
	); err != nil {
		states, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('#panels .panel')].map((p) => p.dataset.query + '=' + p.dataset.state + ' ' + p.querySelector('.body').textContent.slice(0, 200)).join('\n')`))
		t.Fatalf("panels did not all render: %v\n%s", err, states)
	}

	// What the page shows.
	type pageData struct {
		Panels []string          `json:"panels"`
		Stats  map[string]string `json:"stats"`
		Colos  map[string]string `json:"colos"`
		Routes map[string]string `json:"routes"`
		Lines  map[string]string `json:"lines"`
		Polys  int               `json:"polys"`
		Exc    [][]string        `json:"exc"`
		Logs   int               `json:"logs"`
	}
	const read = `(() => {
		const byLabel = (q) => Object.fromEntries([...document.querySelectorAll('#panel-' + q + ' text.bar-value')].map((t) => [t.dataset.label, t.textContent]));
		return {
			panels: [...document.querySelectorAll('#panels .panel')].map((p) => p.dataset.query),
			stats: Object.fromEntries([...document.querySelectorAll('#panel-overview .stat .v')].map((v) => [v.dataset.col, v.textContent])),
			colos: byLabel('requests_per_colo'),
			routes: byLabel('top_failing_routes'),
			lines: Object.fromEntries([...document.querySelectorAll('#panel-errors_per_endpoint .legend .item')].map((s) => [s.dataset.series, s.title])),
			polys: document.querySelectorAll('#panel-errors_per_endpoint svg polyline').length,
			exc: [...document.querySelectorAll('#panel-recent_exceptions tbody tr')].map((tr) => [...tr.cells].map((c) => c.textContent)),
			logs: document.querySelectorAll('#panel-log_search tbody tr').length,
		};
	})()`
	page, err := chromedp.Run(ctx, chromedp.Evaluate[pageData](read))
	if err != nil {
		t.Fatal(err)
	}
	panels := 0
	for _, q := range e.dash.Queries() {
		if q.Panel {
			panels++
		}
	}
	if len(page.Panels) != panels {
		t.Errorf("page has panels %v; want one per saved query that is a panel (%d)", page.Panels, panels)
	}

	// The same figures, straight from ClickHouse.
	rng := fmt.Sprintf("minute >= toDateTime(%d) AND minute < toDateTime(%d)", from, to)
	var reqs, notOK uint64
	if err := e.admin.QueryRow(t.Context(), "SELECT sum(requests), sum(if(outcome = 'ok', 0, requests)) FROM "+e.db+".script_outcomes_1m WHERE "+rng).Scan(&reqs, &notOK); err != nil {
		t.Fatal(err)
	}
	if page.Stats["requests"] != fmtCount(reqs) || page.Stats["not_ok"] != fmtCount(notOK) {
		t.Errorf("overview shows requests %q, not ok %q; ClickHouse says %d, %d", page.Stats["requests"], page.Stats["not_ok"], reqs, notOK)
	}
	wantColos := queryMap(t, e, "SELECT colo, sum(requests) FROM "+e.db+".colo_requests_1m WHERE "+rng+" GROUP BY colo")
	if !reflect.DeepEqual(page.Colos, wantColos) {
		t.Errorf("requests per colo shows %v; ClickHouse says %v", page.Colos, wantColos)
	}
	wantRoutes := queryMap(t, e, "SELECT concat(script_name, ' ', method, ' ', host, route) AS ep, sum(errors) AS e FROM "+e.db+".endpoint_errors_1m WHERE "+rng+" GROUP BY ep HAVING e > 0")
	if !reflect.DeepEqual(page.Routes, wantRoutes) {
		t.Errorf("top failing routes shows %v; ClickHouse says %v", page.Routes, wantRoutes)
	}
	if page.Polys != len(wantRoutes) || len(page.Lines) != len(wantRoutes) {
		t.Errorf("errors per endpoint draws %d lines (legend %v); want %d", page.Polys, page.Lines, len(wantRoutes))
	}
	for ep, n := range wantRoutes {
		if want := ep + " (" + n + ")"; page.Lines[ep] != want {
			t.Errorf("errors per endpoint legend for %q = %q; want %q", ep, page.Lines[ep], want)
		}
	}
	var excs, logs uint64
	if err := e.admin.QueryRow(t.Context(), fmt.Sprintf("SELECT count() FROM %s.trace_items FINAL ARRAY JOIN exceptions WHERE event_time >= toDateTime(%d) AND event_time < toDateTime(%d)", e.db, from, to)).Scan(&excs); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.QueryRow(t.Context(), fmt.Sprintf("SELECT count() FROM %s.trace_items FINAL ARRAY JOIN logs WHERE event_time >= toDateTime(%d) AND event_time < toDateTime(%d)", e.db, from, to)).Scan(&logs); err != nil {
		t.Fatal(err)
	}
	if len(page.Exc) != int(excs) || page.Logs != int(logs) {
		t.Errorf("tables show %d exceptions and %d log lines; ClickHouse says %d and %d", len(page.Exc), page.Logs, excs, logs)
	}
	if len(page.Exc) > 0 && (page.Exc[0][5] != "RangeError" || page.Exc[0][6] != "again") {
		t.Errorf("newest exception row = %q; want RangeError / again", page.Exc[0])
	}

	shot := filepath.Join(artifactDir(t), "dash-browser.png")
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	// A filter: script=shop, through the picker.
	var shopReqs uint64
	if err := e.admin.QueryRow(t.Context(), "SELECT sum(requests) FROM "+e.db+".script_outcomes_1m WHERE script_name = 'shop' AND "+rng).Scan(&shopReqs); err != nil {
		t.Fatal(err)
	}
	shopShown := fmt.Sprintf(`document.querySelector('#panel-overview .stat .v[data-col=requests]').textContent === %q && document.querySelector('#panel-overview').dataset.state === 'ok'`, fmtCount(shopReqs))
	if err := chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[string](`(() => { const s = document.getElementById('f-script'); s.value = 'shop'; s.dispatchEvent(new Event('change')); return s.value; })()`)(ctx, tg)
			return err
		}),
		chromedp.Poll[chromedp.Void](shopShown, chromedp.WithPollingTimeout(20*time.Second)),
	); err != nil {
		t.Errorf("after picking script shop, overview requests never showed %d: %v", shopReqs, err)
	}
	if hash, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash`)); err != nil || !strings.Contains(hash, "script=shop") {
		t.Errorf("URL fragment %q does not keep the filter (%v)", hash, err)
	}

	// The SQL box: a query, then a refused statement with its message.
	runSQL := func(sql string) (state, text string) {
		t.Helper()
		// The previous answer's state is cleared first: the click's
		// handler may run after the poll starts. Panels still loading
		// change their height and move the box: the click (at the button's
		// position) waits until none is.
		err := chromedp.Do(ctx,
			chromedp.Poll[chromedp.Void](`!document.querySelector('#panels .panel[data-state=loading]')`, chromedp.WithPollingTimeout(20*time.Second)),
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := chromedp.Evaluate[string](`document.getElementById('sqlresult').dataset.state = 'sent'`)(ctx, tg)
				return err
			}),
			chromedp.SetValue(chromedp.ID("sql"), sql),
			chromedp.Click(chromedp.ID("runsql")),
			chromedp.Poll[chromedp.Void](`['ok', 'error'].includes(document.getElementById('sqlresult').dataset.state)`, chromedp.WithPollingTimeout(20*time.Second)),
		)
		if err == nil {
			state, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('sqlresult').dataset.state`))
		}
		if err == nil {
			text, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('sqlresult').innerText`))
		}
		if err != nil {
			t.Fatalf("SQL box %q: %v", sql, err)
		}
		return state, text
	}
	if state, text := runSQL("SELECT count() AS n FROM trace_items FINAL"); state != "ok" || !strings.Contains(text, "4") {
		t.Errorf("SQL box count: state %s, %q; want ok with 4", state, text)
	}
	if state, text := runSQL("DROP TABLE trace_items"); state != "error" || !strings.Contains(text, "only a SELECT") {
		t.Errorf("SQL box DROP: state %s, %q; want the refusal", state, text)
	}
	if state, text := runSQL("SELECT * FROM numbers(5)"); state != "error" || !strings.Contains(text, "readonly mode") {
		t.Errorf("SQL box table function: state %s, %q; want ClickHouse's readonly refusal", state, text)
	}
	// A limit: named, with what to do; ClickHouse's text behind "details".
	state, text := runSQL("SELECT length(groupArray(toString(a * b))) FROM (SELECT arrayJoin(range(20000)) AS a) CROSS JOIN (SELECT arrayJoin(range(20000)) AS b)")
	if state != "error" || !strings.Contains(text, "Stopped by the memory limit.") || !strings.Contains(text, "Narrow the view") {
		t.Errorf("SQL box over the memory limit: state %s, %q; want the limit named and a hint", state, text)
	}
	if raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const d = document.querySelector('#sqlresult .error details'); return d && !d.open ? d.querySelector('pre').textContent : ''; })()`)); err != nil || !strings.Contains(raw, "Memory limit (for query) exceeded") {
		t.Errorf("SQL box over the memory limit: closed details hold %q (%v); want ClickHouse's message", raw, err)
	}

	// Every asset came from the server itself: fetch them, and nothing else is referenced.
	for _, p := range []string{"/", "/app.js", "/app.css"} {
		resp, err := http.Get(e.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: %d, CSP %q", p, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}
	select {
	case msg := <-jsErrors:
		t.Errorf("JavaScript exception on the page: %s", msg)
	default:
	}
}

// fmtCount formats n as the page does (en-US grouping).
func fmtCount(n uint64) string {
	s := fmt.Sprint(n)
	var parts []string
	for len(s) > 3 {
		parts = append([]string{s[len(s)-3:]}, parts...)
		s = s[:len(s)-3]
	}
	return strings.Join(append([]string{s}, parts...), ",")
}

// queryMap runs a two-column query (label, count) and returns label →
// formatted count.
func queryMap(t *testing.T, e *env, sql string) map[string]string {
	t.Helper()
	rows, err := e.admin.Query(t.Context(), sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	var keys []string
	for rows.Next() {
		var k string
		var n uint64
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = fmtCount(n)
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		t.Fatalf("%s: no rows; the data set should give some", sql)
	}
	return out
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "(no details)"
	}
	s := d.Text
	if d.Exception != nil && d.Exception.Description != "" {
		s += " " + d.Exception.Description
	}
	return fmt.Sprintf("%s (line %d)", s, d.LineNumber)
}
