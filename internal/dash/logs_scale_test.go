package dash

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/sinks/chsink"
)

// The scale data set: scaleN invocations in the hour [from, to), scaleStepMS
// apart, each with scaleLines console lines of about 1 KB: 1 GB of log
// text, more than the old FINAL … ARRAY JOIN … ORDER BY form of log_search
// could sort within 1 GiB. Invocation n is also Kafka offset n; every field
// is a function of n, so the expected rows are computed here (scaleLogRows,
// scaleExcRows) the way the SQL below writes them.
const (
	scaleN      = 200_000
	scaleLines  = 5
	scaleStepMS = 18 // scaleN × 18 ms = one hour
	// Invocations outside the window, with logs, needles and exceptions
	// that must never show: just after it (newer than every row in it) and
	// in the hour before.
	scaleAfter  = 1_000_000 // first offset
	scaleBefore = 2_000_000
	scaleOutN   = 2_000
)

// scalePad makes a log line about 1 KB long.
var scalePad = strings.Repeat("the quick brown fox jumps over the lazy dog; ", 23)[:1000]

// scaleInsert generates count invocations from offset first, the first at
// baseMS, as the writer would store them.
func scaleInsert(db string, first, count int, baseMS int64) string {
	return fmt.Sprintf(`INSERT INTO %[1]s.trace_items (event_ts_ms, script_name, event_kind, outcome, colo, method, host, route, status,
    `+"`logs.level`, `logs.message`, `logs.ts_ms`, `exceptions.name`, `exceptions.message`, `exceptions.stack`, `exceptions.ts_ms`"+`,
    kafka_topic, kafka_partition, kafka_offset)
SELECT ts, ['api', 'shop', 'auth', 'cdn'][n %% 4 + 1], 'fetch', if(n %% 13 = 0, 'exception', 'ok'),
    ['SJC', 'AMS', 'FRA', 'NRT', 'LHR'][n %% 5 + 1], 'GET', 'a.dev', concat('/r/', toString(n %% 50)), if(n %% 13 = 0, 500, 200),
    ['log', 'info', 'warn', 'error', 'debug'],
    arrayMap(i -> concat(if(n %% 1000 = 7 AND i = 3, 'found NeedleX here ', ''), 'line ', toString(i), ' of ', toString(n), ' ', '%[5]s'), range(%[6]d)),
    arrayMap(i -> toInt64(ts + i + 1), range(%[6]d)),
    if(n %% 13 != 0, emptyArrayString(), if(n %% 26 = 0, ['TypeError', 'RangeError'], ['TypeError'])),
    if(n %% 13 != 0, emptyArrayString(), if(n %% 26 = 0, [concat('x is undefined ', toString(n)), concat('again ', toString(n))], [concat('x is undefined ', toString(n))])),
    if(n %% 13 != 0, emptyArrayString(), if(n %% 26 = 0, ['at f (a.js:1:1)', ''], ['at f (a.js:1:1)'])),
    if(n %% 13 != 0, emptyArrayInt64(), if(n %% 26 = 0, [toInt64(ts + 9), toInt64(ts + 10)], [toInt64(ts + 9)])),
    'trace-items', toInt32(n %% 6), n
FROM (SELECT number AS n, toUInt64(%[4]d + (number - %[2]d) * %[7]d) AS ts FROM numbers(%[2]d, %[3]d))`,
		db, first, count, baseMS, scalePad, scaleLines, scaleStepMS)
}

// The model of scaleInsert, for the invocations in the window.
func scaleScript(n int) string { return [...]string{"api", "shop", "auth", "cdn"}[n%4] }
func scaleColo(n int) string   { return [...]string{"SJC", "AMS", "FRA", "NRT", "LHR"}[n%5] }
func scaleOutcome(n int) string {
	if n%13 == 0 {
		return "exception"
	}
	return "ok"
}
func scaleEndpoint(n int) string { return fmt.Sprintf("GET a.dev/r/%d", n%50) }
func scaleMessage(n, i int) string {
	needle := ""
	if n%1000 == 7 && i == 3 {
		needle = "found NeedleX here "
	}
	return fmt.Sprintf("%sline %d of %d %s", needle, i, n, scalePad)
}

type scaleFilter struct{ script, colo, outcome, search string }

func (f scaleFilter) match(n int) bool {
	return (f.script == "" || scaleScript(n) == f.script) && (f.colo == "" || scaleColo(n) == f.colo) &&
		(f.outcome == "" || scaleOutcome(n) == f.outcome)
}

// scaleLogRows is log_search's answer: invocations newest first, each
// one's lines newest first.
func scaleLogRows(from time.Time, f scaleFilter, limit int) [][]string {
	out := [][]string{}
	for n := scaleN - 1; n >= 0 && len(out) < limit; n-- {
		if !f.match(n) {
			continue
		}
		ts := from.UnixMilli() + int64(n)*scaleStepMS
		for i := scaleLines - 1; i >= 0 && len(out) < limit; i-- {
			msg := scaleMessage(n, i)
			if f.search != "" && !strings.Contains(strings.ToLower(msg), strings.ToLower(f.search)) {
				continue
			}
			level := [...]string{"log", "info", "warn", "error", "debug"}[i]
			out = append(out, []string{strconv.FormatInt((ts+int64(i)+1)/1000, 10), scaleScript(n), level, msg, scaleEndpoint(n), scaleOutcome(n),
				strconv.FormatInt(ts/1000, 10), "trace-items", strconv.Itoa(n % 6), strconv.Itoa(n), scaleScript(n)})
		}
	}
	return out
}

// scaleExcRows is recent_exceptions' answer: invocations newest first,
// each one's exceptions newest first.
func scaleExcRows(from time.Time, f scaleFilter, limit int) [][]string {
	out := [][]string{}
	for n := scaleN - 1; n >= 0 && len(out) < limit; n-- {
		if n%13 != 0 || !f.match(n) {
			continue
		}
		t := strconv.FormatInt((from.UnixMilli()+int64(n)*scaleStepMS)/1000, 10)
		row := func(name, msg string) []string {
			return []string{t, scaleScript(n), scaleOutcome(n), scaleColo(n), scaleEndpoint(n), name, msg, "trace-items", strconv.Itoa(n % 6), strconv.Itoa(n), scaleScript(n)}
		}
		if n%26 == 0 {
			out = append(out, row("RangeError", fmt.Sprintf("again %d", n)))
		}
		out = append(out, row("TypeError", fmt.Sprintf("x is undefined %d", n)))
	}
	return out[:min(limit, len(out))]
}

// scaleInvRows is the explorer's answer (invocations): invocations newest
// first, after skip of them.
func scaleInvRows(from time.Time, f scaleFilter, status string, skip, limit int) [][]string {
	out := [][]string{}
	for n := scaleN - 1; n >= 0 && len(out) < limit; n-- {
		st, class := "200", "2xx"
		if n%13 == 0 {
			st, class = "500", "5xx"
		}
		if !f.match(n) || (status != "" && status != class) {
			continue
		}
		excs := []string{}
		if n%13 == 0 {
			excs = append(excs, fmt.Sprintf("x is undefined %d", n))
		}
		if n%26 == 0 {
			excs = append(excs, fmt.Sprintf("again %d", n))
		}
		if f.search != "" {
			found := false
			for i := range scaleLines {
				found = found || strings.Contains(strings.ToLower(scaleMessage(n, i)), strings.ToLower(f.search))
			}
			for _, m := range excs {
				found = found || strings.Contains(strings.ToLower(m), strings.ToLower(f.search))
			}
			if !found {
				continue
			}
		}
		if skip > 0 {
			skip--
			continue
		}
		t := strconv.FormatInt((from.UnixMilli()+int64(n)*scaleStepMS)/1000, 10)
		out = append(out, []string{t, scaleScript(n), "fetch", scaleOutcome(n), st, scaleColo(n), scaleEndpoint(n), "0", "0",
			strconv.Itoa(scaleLines), strconv.Itoa(len(excs)), "trace-items", strconv.Itoa(n % 6), strconv.Itoa(n), scaleScript(n)})
	}
	return out
}

// TestLogQueriesAtScale runs the raw-table saved queries (log_search,
// recent_exceptions) through the dashboard, with its limits and as its
// read-only user, over an hour holding 1 GB of log text: they must answer,
// with the right rows, newest first, and a replayed record once.
func TestLogQueriesAtScale(t *testing.T) {
	testenv.SkipShort(t, "writes 1 GB of log text")
	srv := sharedClickHouse(t)
	ctx := t.Context()
	db := fmt.Sprintf("dash_logs_%d_%d", os.Getpid(), dbSeq.Add(1))
	admin := testenv.OpenClickHouse(t, srv.Addr(), "default", "default")
	t.Cleanup(func() { _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })

	// The tables as taillight migrate creates them.
	cfg := chsink.DefaultConfig()
	cfg.Addrs = []string{srv.Addr()}
	cfg.Database = db
	w, err := chsink.New(ctx, cfg, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Migrate(ctx)
	w.Close()
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}

	to := time.Now().Truncate(time.Second)
	from := to.Add(-time.Hour)
	exec := func(sql string) {
		t.Helper()
		if err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%.200s…: %v", sql, err)
		}
	}
	// 20 000 invocations (100 MB of text) per INSERT keeps each well
	// inside the default user's memory limit.
	const chunk = 20_000
	for first := 0; first < scaleN; first += chunk {
		exec(scaleInsert(db, first, chunk, from.UnixMilli()+int64(first)*scaleStepMS))
	}
	exec(scaleInsert(db, scaleAfter, scaleOutN, to.UnixMilli()))
	exec(scaleInsert(db, scaleBefore, scaleOutN, from.Add(-time.Hour).UnixMilli()))
	var text uint64
	if err := admin.QueryRow(ctx, fmt.Sprintf("SELECT sum(arraySum(arrayMap(m -> length(m), logs.message))) FROM %s.trace_items "+
		"WHERE event_time >= toDateTime(%d) AND event_time < toDateTime(%d)", db, from.Unix(), to.Unix())).Scan(&text); err != nil {
		t.Fatal(err)
	}
	if text < 1e9 {
		t.Fatalf("the window holds %d bytes of log text; want at least 1 GB", text)
	}
	// Replays of the newest invocation, a needle and one with two
	// exceptions: identical rows in a part of their own. Merges are
	// stopped so they stay unmerged while the queries run.
	exec("SYSTEM STOP MERGES " + db + ".trace_items")
	exec(fmt.Sprintf("INSERT INTO %s.trace_items SELECT * FROM %s.trace_items WHERE kafka_offset IN (%d, 199007, 199992)", db, db, scaleN-1))
	var copies uint64
	if err := admin.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.trace_items WHERE kafka_offset IN (%d, 199007, 199992)", db, scaleN-1)).Scan(&copies); err != nil || copies != 6 {
		t.Fatalf("replayed rows: %d, %v; want 6", copies, err)
	}

	dc := DefaultConfig() // the dashboard's limits: 30 s, 10 000 rows
	dc.Database = db
	ro := testenv.OpenClickHouse(t, srv.Addr(), "readonly", db)
	s, err := New(dc, ro, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The memory limit comes from the server (the readonly profile of
	// deployments/local): check the queries below ran under at most 1 GiB.
	var maxMem string
	if err := ro.QueryRow(clickhouse.Context(ctx, clickhouse.WithSettings(s.Settings())),
		"SELECT value FROM system.settings WHERE name = 'max_memory_usage'").Scan(&maxMem); err != nil {
		t.Fatal(err)
	}
	if n, err := strconv.ParseUint(maxMem, 10, 64); err != nil || n == 0 || n > 1<<30 {
		t.Fatalf("max_memory_usage = %q for dashboard queries; want at most 1 GiB", maxMem)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)

	tests := []struct {
		query  string
		f      scaleFilter
		status string // invocations: status_class
		skip   int    // invocations
		limit  int
		want   [][]string
	}{
		{"log_search", scaleFilter{}, "", 0, 100, nil},
		{"log_search", scaleFilter{}, "", 0, dc.MaxRows, nil},
		{"log_search", scaleFilter{search: "NEEDLEx"}, "", 0, 50, nil},
		{"log_search", scaleFilter{script: "shop", colo: "AMS"}, "", 0, 20, nil},
		// Every line of the window is searched, and none matches.
		{"log_search", scaleFilter{script: "shop", search: "needlex"}, "", 0, 100, [][]string{}},
		{"recent_exceptions", scaleFilter{}, "", 0, 100, nil},
		// All of one script's exceptions: none from outside the window.
		{"recent_exceptions", scaleFilter{script: "auth", outcome: "exception"}, "", 0, dc.MaxRows, nil},
		// The explorer: pages, filters, a text in the logs or the exceptions.
		{"invocations", scaleFilter{}, "", 0, 51, nil},
		{"invocations", scaleFilter{}, "", 5000, 51, nil},
		{"invocations", scaleFilter{script: "api", colo: "NRT"}, "5xx", 10, 51, nil},
		{"invocations", scaleFilter{search: "NEEDLEx"}, "", 50, 51, nil},
		{"invocations", scaleFilter{search: "again 19"}, "", 0, 51, nil},
	}
	for _, tc := range tests {
		q := url.Values{"from": {fmt.Sprint(from.Unix())}, "to": {fmt.Sprint(to.Unix())}, "limit": {fmt.Sprint(tc.limit)},
			"script": {tc.f.script}, "colo": {tc.f.colo}, "outcome": {tc.f.outcome}, "search": {tc.f.search},
			"status_class": {tc.status}, "skip": {fmt.Sprint(tc.skip)}}
		t.Run(tc.query+"?"+q.Encode(), func(t *testing.T) {
			want := tc.want
			switch {
			case want != nil:
			case tc.query == "log_search":
				want = scaleLogRows(from, tc.f, tc.limit)
			case tc.query == "invocations":
				want = scaleInvRows(from, tc.f, tc.status, tc.skip, tc.limit)
			default:
				want = scaleExcRows(from, tc.f, tc.limit)
			}
			resp, err := http.Get(hs.URL + "/api/query/" + tc.query + "?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			var r apiResult
			err = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, %v: %s", resp.StatusCode, err, r.Error)
			}
			t.Logf("%d rows in %.0f ms", len(r.Rows), r.ElapsedMS)
			if got := rows(r); !reflect.DeepEqual(got, want) {
				t.Fatalf("%d rows, want %d; first difference:\n%s", len(got), len(want), firstDiff(got, want))
			}
		})
	}
	// The cases above test what they claim: one script's exceptions fit in
	// a page (so it ends where the window starts), and there are needles.
	if n := len(scaleExcRows(from, scaleFilter{script: "auth", outcome: "exception"}, dc.MaxRows)); n >= dc.MaxRows {
		t.Errorf("recent_exceptions for one script fills the page (%d rows): the window cut is not tested", n)
	}
	if n := len(scaleLogRows(from, scaleFilter{search: "needlex"}, 50)); n != 50 {
		t.Errorf("%d needles in the model; want 50", n)
	}
}

// firstDiff describes the first row where got and want differ.
func firstDiff(got, want [][]string) string {
	short := func(row []string) string {
		s := strings.Join(row, " | ")
		if len(s) > 160 {
			s = s[:160] + "…"
		}
		return s
	}
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			return fmt.Sprintf("row %d missing; want %s", i, short(want[i]))
		case i >= len(want):
			return fmt.Sprintf("row %d extra: %s", i, short(got[i]))
		case !reflect.DeepEqual(got[i], want[i]):
			return fmt.Sprintf("row %d: %s\nwant     %s", i, short(got[i]), short(want[i]))
		}
	}
	return "none"
}
