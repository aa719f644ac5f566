package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/processor/redact"
)

func TestDevUsage(t *testing.T) {
	f := func(want string, args ...string) {
		t.Helper()
		stderr := &syncBuffer{}
		code := runMain(context.Background(), append([]string{"dev"}, args...), stdio{strings.NewReader(""), io.Discard, stderr})
		if code != exitUsage || !strings.Contains(stderr.String(), want) {
			t.Fatalf("dev %q = %d, %q; want exit %d with %q", args, code, stderr, exitUsage, want)
		}
	}
	f("must be positive", "-generate.rate", "0")
	f("must be positive", "-kafka.partitions", "0")
	f("must be positive", "-flush.linger", "0s")
	f("plain identifier", "-clickhouse.database", "a-b")
	f("not host:port", "-clickhouse.addr", "nohost")
	f("max rows", "-dash.max-rows", "0")
	f("unexpected arguments", "extra")
	f("-log.level", "-log.level", "loud")
}

// TestDevPortTaken: a taken port is reported at once, naming the flag that
// moves it, before anything is started or written.
func TestDevPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	root := t.TempDir()
	for _, fl := range []string{"listen.dash", "listen.ingest", "listen.metrics", "listen.kafka"} {
		args := []string{"dev", "-dir", root}
		for _, other := range []string{"listen.dash", "listen.ingest", "listen.metrics", "listen.kafka"} {
			addr := "127.0.0.1:0"
			if other == fl {
				addr = ln.Addr().String()
			}
			args = append(args, "-"+other, addr)
		}
		stderr := &syncBuffer{}
		code := runMain(context.Background(), args, stdio{strings.NewReader(""), io.Discard, stderr})
		want := ln.Addr().String() + " is taken by another process; pick another address with -" + fl
		if code != exitError || !strings.Contains(stderr.String(), want) {
			t.Errorf("-%s on a taken port: exit %d, stderr %q; want %d with %q", fl, code, stderr, exitError, want)
		}
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("a failed start left %d entries in -dir", len(ents))
	}
}

// TestDevNoClickHouse: without a ClickHouse server binary, dev says which
// command installs one and which flags avoid it, and leaves nothing behind.
func TestDevNoClickHouse(t *testing.T) {
	root := t.TempDir()
	stderr := &syncBuffer{}
	code := runMain(context.Background(), []string{"dev", "-dir", root, "-clickhouse.binary", filepath.Join(root, "no-clickhouse"),
		"-listen.dash", "127.0.0.1:0", "-listen.ingest", "127.0.0.1:0", "-listen.metrics", "127.0.0.1:0", "-listen.kafka", "127.0.0.1:0"},
		stdio{strings.NewReader(""), io.Discard, stderr})
	for _, want := range []string{"clickhouse server binary not found", "make deps", "make run", "-clickhouse.addr"} {
		if code != exitError || !strings.Contains(stderr.String(), want) {
			t.Errorf("dev without ClickHouse: exit %d, stderr %q; want %d naming %q", code, stderr, exitError, want)
		}
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("a failed start left %d entries in -dir", len(ents))
	}
}

var (
	devDashRE   = regexp.MustCompile(`Dashboard +(http://127\.0\.0\.1:\d+/)`)
	devIngestRE = regexp.MustCompile(`Ingest +(http://127\.0\.0\.1:\d+/v1/traces) +\(bearer token (\S+)\)`)
	devMetricRE = regexp.MustCompile(`Metrics +(http://127\.0\.0\.1:\d+/metrics)`)
	devCHRE     = regexp.MustCompile(`ClickHouse +(127\.0\.0\.1:\d+) \(native\)`)
	devClientRE = regexp.MustCompile(`clickhouse-client --host 127\.0\.0\.1 --port (\d+) --database taillight`)
)

// TestDevCommand runs `taillight dev` end to end on a private ClickHouse:
// the synthetic load reaches ClickHouse and the dashboard, a batch POSTed
// to ingest lands redacted, the suggested first query runs, and cancelling
// stops everything with exit 0 and removes the data directory.
func TestDevCommand(t *testing.T) {
	testenv.SkipShort(t, "starts a real ClickHouse server")
	if _, err := devenv.FindClickHouse(); err != nil {
		testenv.NoClickHouse(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	root := t.TempDir()
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runMain(dctx, []string{"dev", "-dir", root, "-listen.dash", "127.0.0.1:0", "-listen.ingest", "127.0.0.1:0", "-listen.metrics", "127.0.0.1:0",
			"-listen.kafka", "127.0.0.1:0", "-listen.clickhouse", "0", "-listen.clickhouse-http", "0",
			"-generate.rate", "200", "-flush.linger", "200ms"}, stdio{strings.NewReader(""), stdout, stderr})
	}()
	exited := func() {
		select {
		case c := <-done:
			t.Fatalf("dev exited early with %d; stdout:\n%s\nstderr:\n%s", c, stdout, stderr)
		default:
		}
	}
	// poll runs cond until it holds or within passes.
	poll := func(within time.Duration, what string, cond func() bool) {
		t.Helper()
		if !testenv.Poll(within, 50*time.Millisecond, func() bool {
			if cond() {
				return true
			}
			exited()
			return false
		}) {
			t.Fatalf("timed out after %s waiting for %s; stdout:\n%s\nstderr (last 4 KiB):\n%s", within, what, stdout, tail(stderr.String(), 4096))
		}
	}
	poll(3*time.Minute, "the banner", func() bool { return strings.Contains(stdout.String(), "Ctrl-C stops everything") })
	out := stdout.String()
	dashURL, metricsURL := match1(t, devDashRE, out), match1(t, devMetricRE, out)
	im := devIngestRE.FindStringSubmatch(out)
	if im == nil {
		t.Fatalf("no ingest URL and token in the banner:\n%s", out)
	}
	ingestURL, token := im[1], im[2]
	chAddr := match1(t, devCHRE, out)
	if _, port, _ := net.SplitHostPort(chAddr); match1(t, devClientRE, out) != port {
		t.Errorf("the clickhouse-client command does not name port %s:\n%s", port, out)
	}
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 1 {
		t.Fatalf("want one data directory in -dir, got %v (%v)", entries, err)
	}

	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{chAddr}, Auth: clickhouse.Auth{Database: "taillight", Username: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	count := func(where string, args ...any) uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM trace_items FINAL WHERE "+where, args...).Scan(&n); err != nil {
			t.Logf("count: %v", err)
			return 0
		}
		return n
	}
	poll(time.Minute, "synthetic rows in trace_items", func() bool { return count("1") >= 50 })

	// The dashboard answers with the rollups of the synthetic load.
	var requests float64
	poll(time.Minute, "the dashboard's overview to count requests", func() bool {
		now := time.Now().Unix()
		code, body := get(t, fmt.Sprintf("%sapi/query/overview?from=%d&to=%d", dashURL, now-600, now+60))
		if code != 200 {
			t.Logf("overview: %d %.300s", code, body)
			return false
		}
		var res struct {
			Rows [][]any `json:"rows"`
		}
		if err := json.Unmarshal([]byte(body), &res); err != nil || len(res.Rows) != 1 || len(res.Rows[0]) == 0 {
			t.Fatalf("overview answer %.300s: %v", body, err)
		}
		switch v := res.Rows[0][0].(type) {
		case float64:
			requests = v
		case string:
			requests, _ = strconv.ParseFloat(v, 64)
		}
		return requests > 0
	})

	// A batch POSTed to ingest lands, redacted.
	script := fmt.Sprintf("dev-test-%d", os.Getpid())
	const rawURL = "https://shop.example/orders/4111111111111111/items?session=0123456789abcdef0123456789abcdef"
	nowMs := time.Now().UnixMilli()
	var items []string
	for i := range 3 {
		items = append(items, fmt.Sprintf(`{"scriptName":%q,"outcome":"ok","eventTimestamp":%d,"wallTime":4,"cpuTime":2,`+
			`"event":{"request":{"url":%q,"method":"POST","headers":{"authorization":"Bearer s3cret","x-n":"%d"}},"response":{"status":201}},"logs":[],"exceptions":[]}`,
			script, nowMs+int64(i), rawURL, i))
	}
	code, body, err := postItems(ingestURL, token, []byte("["+strings.Join(items, ",")+"]"))
	if err != nil || code != 202 || !strings.Contains(body, `"accepted":3`) {
		t.Fatalf("POST to ingest = %d %q (%v); want 202 accepting 3", code, body, err)
	}
	if code, _, _ := postItems(ingestURL, "wrong", []byte("[]")); code != 401 {
		t.Errorf("POST with a wrong token = %d; want 401", code)
	}
	poll(time.Minute, "the POSTed batch in trace_items", func() bool { return count("script_name = ?", script) == 3 })
	var gotURL, gotAuth string
	var status uint16
	if err := conn.QueryRow(ctx, "SELECT any(url), any(headers.value[indexOf(headers.name, 'authorization')]), any(status) FROM trace_items FINAL WHERE script_name = ?", script).
		Scan(&gotURL, &gotAuth, &status); err != nil {
		t.Fatal(err)
	}
	if want := redact.URL(rawURL); gotURL != want || want == rawURL {
		t.Errorf("stored URL %q; want redact.URL's %q (raw %q)", gotURL, want, rawURL)
	}
	if gotAuth != "REDACTED" || status != 201 {
		t.Errorf("stored authorization %q, status %d; want REDACTED, 201", gotAuth, status)
	}

	// The query the banner suggests runs on this server.
	rows, err := conn.Query(ctx, devFirstQuery)
	if err != nil {
		t.Fatalf("the banner's first query fails: %v", err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if n == 0 {
		t.Error("the banner's first query returned no rows")
	}

	code, body = get(t, metricsURL)
	for _, m := range []string{"taillight_ingest_requests_total", "taillight_processor_rows_total", "taillight_chsink_rows_total", "taillight_dash_queries_total"} {
		if code != 200 || !strings.Contains(body, m) {
			t.Errorf("GET %s = %d without %s", metricsURL, code, m)
		}
	}
	if code, body := get(t, strings.TrimSuffix(metricsURL, "metrics")+"readyz"); code != 200 {
		t.Errorf("readyz = %d %q", code, body)
	}

	stop()
	select {
	case c := <-done:
		if c != exitOK {
			t.Fatalf("dev exited with %d after cancel; stderr:\n%s", c, tail(stderr.String(), 4096))
		}
	case <-time.After(90 * time.Second):
		t.Fatal("dev did not stop within 90s of cancel")
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("the data directory was not removed: %v", ents)
	}
	for _, what := range []string{"stopping generator", "stopping ingest", "stopping processor (flushing)", "stopping dashboard", "stopping clickhouse"} {
		if !strings.Contains(stderr.String(), what) {
			t.Errorf("stderr lacks %q", what)
		}
	}
	log := stderr.String()
	if i, j := strings.Index(log, "stopping processor"), strings.Index(log, `msg="stopping dashboard"`); i < 0 || j < i {
		t.Errorf("the dashboard stopped before the processor flushed")
	}
	if strings.Contains(log, "level=ERROR") {
		t.Errorf("errors logged:\n%s", tail(log, 4096))
	}
	t.Logf("dev: %.0f requests in the dashboard's overview at first look", requests)
}

func match1(t *testing.T, re *regexp.Regexp, s string) string {
	t.Helper()
	m := re.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("%s not in:\n%s", re, s)
	}
	return m[1]
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
