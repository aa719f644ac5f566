package browser

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/taillight/taillight/internal/testenv"
)

// The dashboard in headless Chromium at three data shapes: a fresh start
// (a few minutes of data), many scripts (events over 200 scripts with long
// names and every outcome in the last hour) and a day of history. Each
// checks the layout (no horizontal overflow, legends of bounded height,
// charts of at most Top N + "other" series), the figures against
// ClickHouse, the invocation explorer round trip, click to filter and the
// URL state surviving a reload and the back button.
//
// The shapes hold 1,000,000 events each (over 200 scripts in the last
// hour; over 24 hours), about a minute in all; TAILLIGHT_DASH_SHAPES=small
// writes a tenth of that.
// TAILLIGHT_SCREENSHOTS=DIR also saves each shape's screenshot there as
// dash-<shape>.png (make screenshots: docs/).

// outcomes are every outcome a Workers invocation can end with.
var outcomes = []string{"ok", "exception", "exceededCpu", "exceededMemory", "canceled", "scriptNotFound", "responseStreamDisconnected", "unknown"}

// shapeData describes generated invocations: n events, the newest at end
// and the oldest span before it, over scripts (skewed: a few scripts get
// most events).
type shapeData struct {
	n       int
	span    time.Duration
	end     time.Time
	scripts []string
	// sealed writes the rollups as one seal of rollup_minutes, as a
	// processor leaves history; else as one unsealed block of
	// rollup_journal, as just after a commit.
	sealed bool
}

// shapeScripts returns count script names: long (about 120 bytes) and one
// of 4 KB, longer than a filter may be.
func shapeScripts(count int) []string {
	out := make([]string, count)
	for i := range out {
		out[i] = fmt.Sprintf("tenant-%03d-checkout-and-payments-service-with-a-very-long-deployment-name-%s-%03d", i, strings.Repeat("x", i%40), i)
	}
	out[count-1] = "huge-" + strings.Repeat("y", 4096)
	return out
}

// write inserts d into trace_items, in the layout the writer uses, and
// its rollups: sealed, or as one committed block of rollup_journal (the
// views read that through rollup_tail).
func (d shapeData) write(t *testing.T, e *env) {
	t.Helper()
	var names strings.Builder
	for i, s := range d.scripts {
		if i > 0 {
			names.WriteByte(',')
		}
		names.WriteString("'" + s + "'")
	}
	const chunk = 250_000
	endMS, spanMS := d.end.UnixMilli(), d.span.Milliseconds()
	for first := 0; first < d.n; first += chunk {
		count := min(chunk, d.n-first)
		sql := fmt.Sprintf(`INSERT INTO %[1]s.trace_items (event_ts_ms, script_name, event_kind, outcome, colo, method, host, route, url, status,
    cpu_time_ms, wall_time_ms, `+"`logs.level`, `logs.message`, `logs.ts_ms`, `exceptions.name`, `exceptions.message`, `exceptions.stack`, `exceptions.ts_ms`"+`,
    kafka_topic, kafka_partition, kafka_offset)
SELECT ts, [%[2]s][s + 1], 'fetch', outcome, ['SJC', 'AMS', 'FRA', 'NRT', 'LHR', 'SIN', 'GRU', 'SYD'][n %% 8 + 1], method, 'api.example.com', route,
    concat('https://api.example.com', route), status, toUInt32(h %% 50), toUInt32(h %% 500),
    [if(outcome = 'ok', 'log', 'error'), 'debug'], [concat('handled request ', toString(n)), concat('route ', route)], [toInt64(ts + 1), toInt64(ts + 2)],
    if(outcome = 'exception', ['TypeError'], emptyArrayString()),
    if(outcome = 'exception', [concat('x is undefined in request ', toString(n))], emptyArrayString()),
    if(outcome = 'exception', ['TypeError: x is undefined\n    at handle (worker.js:10:5)\n    at fetch (worker.js:3:1)'], emptyArrayString()),
    if(outcome = 'exception', [toInt64(ts + 3)], emptyArrayInt64()),
    'trace-items', toInt32(n %% 4), intDiv(n, 4)
FROM
(
    SELECT n, ts, h, s, route, method, outcome,
        multiIf(outcome = 'exception', 500, outcome = 'ok', [200, 200, 200, 201, 204, 304, 404, 429][n %% 8 + 1], 0) AS status
    FROM
    (
        SELECT number AS n, toUInt64(%[5]d - intDiv(number * %[6]d, %[7]d)) AS ts, intHash32(number) AS h,
            intDiv((h %% 1000) * (h %% 1000) * %[8]d, 1000000) AS s,
            ['/', '/api/users/:id', '/api/orders', '/checkout', '/static/*'][intHash32(number * 3) %% 5 + 1] AS route,
            if(intHash32(number * 5) %% 4 = 0, 'POST', 'GET') AS method,
            multiIf(intHash32(number * 7) %% 100 < 70, 'ok', intHash32(number * 7) %% 100 < 85, 'exception', intHash32(number * 7) %% 100 < 88, 'exceededCpu',
                intHash32(number * 7) %% 100 < 91, 'exceededMemory', intHash32(number * 7) %% 100 < 94, 'canceled', intHash32(number * 7) %% 100 < 96, 'scriptNotFound',
                intHash32(number * 7) %% 100 < 98, 'responseStreamDisconnected', 'unknown') AS outcome
        FROM numbers(%[3]d, %[4]d)
    )
)`, e.db, names.String(), first, count, endMS, spanMS, d.n, len(d.scripts))
		if err := e.admin.Exec(t.Context(), sql); err != nil {
			t.Fatalf("write %d events: %v", count, err)
		}
	}
	// The rollups as the processor computes them (sinks.RollupRow):
	// kind 1 endpoints, 2 colos, 3 scripts, plus the mark (kind 0).
	from := " FROM " + e.db + ".trace_items GROUP BY m, script_name"
	kinds := []struct{ sel, from string }{
		{"1, toStartOfMinute(event_time) AS m, script_name, host, method, route, '', '', count(), " +
			"countIf(outcome != 'ok' OR status >= 500), countIf(outcome = 'exception'), countIf(status >= 400 AND status < 500), countIf(status >= 500), 0, 0",
			from + ", host, method, route"},
		{"2, toStartOfMinute(event_time) AS m, script_name, '', '', '', colo, outcome, count(), 0, 0, 0, 0, 0, 0", from + ", colo, outcome"},
		{"3, toStartOfMinute(event_time) AS m, script_name, '', '', '', '', outcome, count(), 0, 0, 0, 0, sum(cpu_time_ms), sum(wall_time_ms)", from + ", outcome"},
		// A seal's mark sits at the latest minute it holds.
		{"0, (SELECT max(toStartOfMinute(event_time)) FROM " + e.db + ".trace_items), '', '', '', '', '', '', 0, 0, 0, 0, 0, 0, 0", ""},
	}
	cols := "kind, minute, script_name, host, method, route, colo, outcome, requests, errors, exceptions, status_4xx, status_5xx, cpu_time_ms_sum, wall_time_ms_sum"
	for _, k := range kinds {
		var sql string
		if d.sealed {
			sql = fmt.Sprintf("INSERT INTO %s.rollup_minutes (%s, kafka_topic, kafka_partition, seal_first_offset, seal_last_offset, sealed_at) "+
				"SELECT %s, 'trace-items', 0, 0, %d, now()%s", e.db, cols, k.sel, d.n, k.from)
		} else {
			sql = fmt.Sprintf("INSERT INTO %s.rollup_journal (kafka_topic, kafka_partition, block_first_offset, block_last_offset, %s) "+
				"SELECT 'trace-items', 0, 0, %d, %s%s", e.db, cols, d.n, k.sel, k.from)
		}
		if err := e.admin.Exec(t.Context(), sql); err != nil {
			t.Fatalf("write rollups: %v\n%.300s", err, sql)
		}
	}
}

func TestBrowserShapes(t *testing.T) {
	testenv.SkipShort(t, "needs Chromium and a real ClickHouse server")
	bin, err := findChromium()
	if err != nil {
		if testenv.E2E() {
			t.Fatalf("TAILLIGHT_E2E=1 and %v: run deployments/local/install-chromium.sh (apt-get install chromium)", err)
		}
		t.Skipf("%v: run deployments/local/install-chromium.sh, or set TAILLIGHT_E2E=1 to make this a failure", err)
	}
	scale := 1
	if os.Getenv("TAILLIGHT_DASH_SHAPES") == "small" {
		scale = 10
	}
	now := time.Now().Truncate(time.Second)
	t.Run("fresh", func(t *testing.T) {
		// The data set of TestBrowser, minutes old: what a fresh make run
		// shows, in the page's default range (the last hour).
		e := newEnv(t, now.UTC().Truncate(time.Minute).Add(-5*time.Minute))
		// The rollups count 19 invocations; the newest stored one has no
		// console line.
		checkShape(t, bin, e, shapeCheck{name: "fresh", hash: "refresh=0", events: 19, zoomed: true, logs: "0"})
	})
	t.Run("scripts", func(t *testing.T) {
		e := newBareEnv(t)
		d := shapeData{n: 1_000_000 / scale, span: 55 * time.Minute, end: now.Add(-time.Minute), scripts: shapeScripts(200), sealed: true}
		start := time.Now()
		d.write(t, e)
		t.Logf("wrote %d events over %d scripts in %s", d.n, len(d.scripts), time.Since(start).Round(time.Millisecond))
		checkShape(t, bin, e, shapeCheck{name: "scripts", hash: "range=3600&refresh=0", events: d.n, scripts: len(d.scripts), outcomes: len(outcomes), logs: "2"})
	})
	t.Run("day", func(t *testing.T) {
		e := newBareEnv(t)
		d := shapeData{n: 1_000_000 / scale, span: 23*time.Hour + 50*time.Minute, end: now.Add(-time.Minute), scripts: shapeScripts(30), sealed: true}
		start := time.Now()
		d.write(t, e)
		t.Logf("wrote %d events over 24 hours in %s", d.n, time.Since(start).Round(time.Millisecond))
		checkShape(t, bin, e, shapeCheck{name: "day", hash: "range=86400&refresh=0", events: d.n, scripts: len(d.scripts), outcomes: len(outcomes), logs: "2"})
	})
}

// shapeCheck is what one shape's page must show.
type shapeCheck struct {
	name     string
	hash     string // the URL fragment the page is opened with
	events   int    // invocations in the range
	scripts  int    // distinct scripts (0: not checked)
	outcomes int    // distinct outcomes (0: not checked)
	zoomed   bool   // the line charts' time axis starts at the data
	logs     string // console lines of the invocation an explorer row opens
}

const (
	topN          = 10 // the page's default Top N
	maxLegendPx   = 80 // a legend's height at most (CSS: 5.6em of 12 px, plus padding)
	pollTimeout   = 60 * time.Second
	panelsAllOK   = `document.body.dataset.view === 'dash' && [...document.querySelectorAll('#panels .panel')].length > 0 && [...document.querySelectorAll('#panels .panel')].every((p) => p.dataset.state === 'ok')`
	explorerOK    = `document.body.dataset.view === 'invocations' && document.getElementById('explorer').dataset.state === 'ok'`
	invocationOK  = `document.body.dataset.view === 'invocation' && document.getElementById('invocation').dataset.state === 'ok'`
	layoutProbeJS = `(() => {
		const de = document.documentElement;
		const wide = [...document.querySelectorAll('header, main, .panel, .view')].filter((p) => !p.hidden && p.scrollWidth > p.clientWidth + 1)
			.map((p) => (p.id || p.tagName) + ' ' + p.scrollWidth + '>' + p.clientWidth);
		const legends = [...document.querySelectorAll('.legend')].map((l) => ({ panel: l.closest('.panel').id, h: l.getBoundingClientRect().height, items: l.children.length }));
		return { overflow: de.scrollWidth - de.clientWidth, wide, legends,
			lines: document.querySelectorAll('#panel-errors_per_endpoint svg polyline').length,
			bars: [...document.querySelectorAll('#panel-outcomes_per_script svg text.label, #panel-outcomes_per_script svg text.other')].map((t) => t.firstChild.textContent),
			outcomeSum: [...document.querySelectorAll('#panel-outcomes_per_script svg rect')].reduce((a, r) => a + Number(r.dataset.value), 0),
			outcomeKinds: document.querySelectorAll('#panel-outcomes_per_script .legend .item').length,
			requests: (document.querySelector('#panel-overview .stat .v[data-col=requests]') || {}).textContent,
			zoomed: [...document.querySelectorAll('#panel-errors_per_endpoint svg')].map((s) => s.dataset.zoomed).join() };
	})()`
)

type layout struct {
	Overflow int      `json:"overflow"`
	Wide     []string `json:"wide"`
	Legends  []struct {
		Panel string  `json:"panel"`
		H     float64 `json:"h"`
		Items int     `json:"items"`
	} `json:"legends"`
	Lines        int      `json:"lines"`
	Bars         []string `json:"bars"`
	OutcomeSum   float64  `json:"outcomeSum"`
	OutcomeKinds int      `json:"outcomeKinds"`
	Requests     string   `json:"requests"`
	Zoomed       string   `json:"zoomed"`
}

// checkShape opens the dashboard on e and checks it as the shape says.
func checkShape(t *testing.T, bin string, e *env, sc shapeCheck) {
	ctx := newBrowser(t, bin, 4*time.Minute)
	jsErrors := listenErrors(ctx, t, bin)
	js := func(expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr)); err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
	}
	wait := func(what, cond string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(pollTimeout))); err != nil {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash + '\n' + document.getElementById('status').textContent + '\n' + [...document.querySelectorAll('.panel')].filter((p) => p.dataset.state !== 'ok').map((p) => p.id + '=' + p.dataset.state + ' ' + p.querySelector('.body').textContent.slice(0, 300)).join('\n')`))
			t.Fatalf("%s: %v\n%s", what, err, state)
		}
	}
	str := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/#"+sc.hash)); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	wait("every panel renders", panelsAllOK)

	// Layout.
	lay, err := chromedp.Run(ctx, chromedp.Evaluate[layout](layoutProbeJS))
	if err != nil {
		t.Fatal(err)
	}
	if lay.Overflow > 0 || len(lay.Wide) > 0 {
		t.Errorf("horizontal overflow: page by %d px; wider than their box: %v", lay.Overflow, lay.Wide)
	}
	for _, l := range lay.Legends {
		if l.H > maxLegendPx || l.H <= 0 {
			t.Errorf("legend of %s is %.0f px high (%d items); want 1..%d", l.Panel, l.H, l.Items, maxLegendPx)
		}
	}
	if lay.Lines > topN+1 {
		t.Errorf("errors per endpoint draws %d lines; want at most Top N (%d) + other", lay.Lines, topN)
	}
	if want := fmtCount(uint64(sc.events)); lay.Requests != want {
		t.Errorf("overview shows %q requests; want %s", lay.Requests, want)
	}
	if int(lay.OutcomeSum) != sc.events {
		t.Errorf("outcomes per script bars add up to %.0f; want every invocation (%d)", lay.OutcomeSum, sc.events)
	}
	if sc.scripts > topN {
		if len(lay.Bars) != topN+1 || lay.Bars[topN] != "other" {
			t.Errorf("outcomes per script shows bars %q; want Top %d scripts and other", lay.Bars, topN)
		}
		for _, b := range lay.Bars {
			if len(b) > 40 {
				t.Errorf("bar label %q is not shortened", b)
			}
		}
	}
	if sc.outcomes > 0 && lay.OutcomeKinds != sc.outcomes {
		t.Errorf("outcomes per script has %d outcomes in its legend; want %d", lay.OutcomeKinds, sc.outcomes)
	}
	if sc.zoomed && lay.Zoomed != "true" {
		t.Errorf("errors per endpoint axis zoomed = %q; want the axis to start at the data", lay.Zoomed)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // PNG
	if err != nil {
		t.Fatal(err)
	}
	saveShot(t, "dash-"+sc.name+".png", shot, true)

	// A narrower window (one column of panels): still nothing sideways.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(900, 1600)); err != nil {
		t.Fatal(err)
	}
	narrow, err := chromedp.Run(ctx, chromedp.Poll[layout](`(() => { const l = `+layoutProbeJS+`; return window.innerWidth === 900 ? l : null; })()`, chromedp.WithPollingTimeout(pollTimeout)))
	if err != nil {
		t.Fatal(err)
	}
	if narrow.Overflow > 0 || len(narrow.Wide) > 0 {
		t.Errorf("at 900 px: horizontal overflow by %d px; wider than their box: %v", narrow.Overflow, narrow.Wide)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateReset()); err != nil {
		t.Fatal(err)
	}

	// The Top N control: the query picks fewer scripts, the rest is "other".
	if sc.scripts > 5 {
		js(`(() => { const s = document.getElementById('topn'); s.value = '5'; s.dispatchEvent(new Event('change')); })()`)
		wait("Top 5", panelsAllOK+` && location.hash.includes('n=5')`)
		bars := str(`[...document.querySelectorAll('#panel-outcomes_per_script svg text.label, #panel-outcomes_per_script svg text.other')].map((t) => t.firstChild.textContent).join('|')`)
		if b := strings.Split(bars, "|"); len(b) != 6 || b[5] != "other" {
			t.Errorf("with Top 5, outcomes per script shows %q; want 5 scripts and other", b)
		}
		js(`history.back()`)
		wait("Top 10 again", panelsAllOK+` && !location.hash.includes('n=5')`)
	}

	// Explorer round trip from a panel: an exception row opens its invocation.
	row := str(`(() => { const tr = document.querySelector('#panel-recent_exceptions tbody tr.link'); return tr ? [tr.dataset.topic, tr.dataset.partition, tr.dataset.offset].join('/') : ''; })()`)
	if row == "" {
		t.Fatal("recent exceptions has no row linking to an invocation")
	}
	js(`document.querySelector('#panel-recent_exceptions tbody tr.link').click()`)
	wait("the exception's invocation opens", invocationOK)
	detail := str(`['kafka_topic', 'kafka_partition', 'kafka_offset'].map((f) => document.querySelector('#inv-body [data-field=' + f + '] td').textContent).join('/') + ' ' +
		document.querySelectorAll('#inv-body .exception pre.stack').length + ' ' + document.querySelectorAll('#inv-body ol.logs li').length`)
	if f := strings.Fields(detail); len(f) != 3 || f[0] != row || f[1] == "0" {
		t.Errorf("the invocation opened from exception row %s shows %q; want its coordinates and a stack", row, detail)
	}
	js(`history.back()`)
	wait("back to the dashboard", panelsAllOK)

	// The explorer: its list, the next page, a row's detail, and back.
	js(`document.getElementById('tab-invocations').click()`)
	wait("the explorer lists invocations", explorerOK+` && Number(document.getElementById('explorer').dataset.rows) > 0`)
	first := str(`document.querySelector('#explorer tbody tr.link').dataset.offset`)
	viewShot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		saveShot(t, "dash-"+sc.name+"-"+name+".png", png, sc.name == "scripts")
	}
	viewShot("explorer")
	if sc.events > explorerPageSize {
		js(`document.getElementById('older').click()`)
		wait("the explorer's second page", explorerOK+` && location.hash.includes('page=1')`)
		if second := str(`document.querySelector('#explorer tbody tr.link').dataset.offset`); second == first {
			t.Errorf("the second page starts with the first page's invocation (offset %s)", first)
		}
	}
	want := str(`(() => { const tr = document.querySelector('#explorer tbody tr.link'); return [tr.dataset.topic, tr.dataset.partition, tr.dataset.offset].join('/'); })()`)
	js(`document.querySelector('#explorer tbody tr.link').click()`)
	wait("an explorer row opens", invocationOK+` && document.getElementById('invocation').dataset.found === 'yes'`)
	if got := str(`['kafka_topic', 'kafka_partition', 'kafka_offset'].map((f) => document.querySelector('#inv-body [data-field=' + f + '] td').textContent).join('/')`); got != want {
		t.Errorf("explorer row %s opened invocation %s", want, got)
	}
	viewShot("invocation")
	if n := str(`String(document.querySelectorAll('#inv-body ol.logs li').length)`); n != sc.logs {
		t.Errorf("the invocation shows %s log lines; want %s", n, sc.logs)
	}
	js(`history.back()`)
	wait("back to the explorer page", explorerOK)
	if sc.events > explorerPageSize && !strings.Contains(str(`location.hash`), "page=1") {
		t.Errorf("back from an invocation lost the explorer's page: %s", str(`location.hash`))
	}

	// Click to filter: a colo bar, from the dashboard.
	js(`document.getElementById('tab-dash').click()`)
	wait("the dashboard again", panelsAllOK)
	colo := str(`document.querySelector('#panel-requests_per_colo svg rect.click').dataset.label`)
	js(`document.querySelector('#panel-requests_per_colo svg rect.click').dispatchEvent(new MouseEvent('click', { bubbles: true }))`)
	coloOnly := fmt.Sprintf(`location.hash.includes('colo=' + encodeURIComponent(%q)) && %s && [...document.querySelectorAll('#panel-requests_per_colo text.bar-value')].map((t) => t.dataset.label).join() === %q`, colo, panelsAllOK, colo)
	wait("a colo bar filters the page", coloOnly)

	// The URL holds the state: a reload shows the same view.
	hash := str(`location.hash`)
	js(`window.beforeReload = true`) // gone once the page is loaded anew
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	wait("the filtered view after a reload", `!window.beforeReload && `+coloOnly+` && document.getElementById('f-colo').value === `+strconv.Quote(colo))
	if got := str(`location.hash`); got != hash {
		t.Errorf("after a reload the URL is %s; want %s", got, hash)
	}
	// Back undoes the filter.
	js(`history.back()`)
	wait("back before the filter", panelsAllOK+` && document.getElementById('f-colo').value === '' && !location.hash.includes('colo=')`)

	select {
	case msg := <-jsErrors:
		t.Errorf("JavaScript exception on the page: %s", msg)
	default:
	}
}

// explorerPageSize is the explorer's page (web/app.js PAGE_SIZE).
const explorerPageSize = 50

// saveShot writes a screenshot to artifacts/ and, for docs when
// TAILLIGHT_SCREENSHOTS names a directory, there too.
func saveShot(t *testing.T, name string, png []byte, docs bool) {
	t.Helper()
	dirs := []string{artifactDir(t)}
	if d := os.Getenv("TAILLIGHT_SCREENSHOTS"); d != "" && docs {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", p, len(png))
	}
}
