package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
)

func TestDashUsage(t *testing.T) {
	f := func(want string, args ...string) {
		t.Helper()
		stderr := &syncBuffer{}
		code := runMain(context.Background(), append([]string{"dash"}, args...), stdio{strings.NewReader(""), io.Discard, stderr})
		if code != exitUsage || !strings.Contains(stderr.String(), want) {
			t.Fatalf("dash %q = %d, %q; want exit %d with %q", args, code, stderr, exitUsage, want)
		}
	}
	f("max rows", "-dash.max-rows", "0")
	f("whole seconds", "-dash.max-execution-time", "1500ms")
	f("plain identifier", "-clickhouse.database", "a-b")
	f("not host:port", "-clickhouse.addr", "nohost")
	f("unexpected arguments", "extra")
	f("-log.level", "-log.level", "loud")
}

var dashURLRE = regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+/)`)

// TestDashCommand runs `taillight dash` on a real ClickHouse (a migrated
// empty database) and reads its page, API, metrics and readiness.
func TestDashCommand(t *testing.T) {
	testenv.SkipShort(t, "needs a real ClickHouse server")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := testenv.NeedClickHouse(t, ctx, devenv.ClickHouseConfig{StartTimeout: 90 * time.Second})
	db := fmt.Sprintf("tl_dash_%d", os.Getpid())
	if code, _, errOut := runMigrateCmd(t, "-clickhouse.addr", srv.Addr(), "-clickhouse.database", db); code != exitOK {
		t.Fatalf("migrate = %d: %s", code, errOut)
	}

	dctx, stop := context.WithCancel(ctx)
	defer stop()
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runMain(dctx, []string{"dash", "-listen", "127.0.0.1:0", "-clickhouse.addr", srv.Addr(),
			"-clickhouse.database", db, "-clickhouse.user", "readonly"}, stdio{strings.NewReader(""), io.Discard, stderr})
	}()
	var base string
	testenv.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool {
		if m := dashURLRE.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
			return true
		}
		select {
		case c := <-done:
			t.Fatalf("dash exited with %d; stderr:\n%s", c, stderr)
		default:
		}
		return false
	}, "dash not serving; stderr:\n%s", stderr)
	for _, c := range []struct{ path, want string }{
		{"", "<title>taillight</title>"},
		{"app.js", "api/query"},
		{"api/queries", `"errors_per_endpoint"`},
		{"api/query/overview", `"requests"`},
		{"readyz", "ready"},
		{"healthz", "ok"},
		{"metrics", `taillight_dash_queries_total{result="ok",source="saved"} 1`},
	} {
		code, body := get(t, base+c.path)
		if code != 200 || !strings.Contains(body, c.want) {
			t.Errorf("GET /%s = %d, want 200 with %q; body:\n%.400s", c.path, code, c.want, body)
		}
	}
	stop()
	select {
	case c := <-done:
		if c != exitOK {
			t.Fatalf("dash exited with %d after cancel; stderr:\n%s", c, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dash did not stop after cancel")
	}
}

// dash started while ClickHouse accepts connections and never answers keeps
// running: /readyz and the page answer 503 with the reason.
func TestDashWaitsForClickHouse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runMain(ctx, []string{"dash", "-listen", "127.0.0.1:0", "-clickhouse.addr", ln.Addr().String(),
			"-clickhouse.dial-timeout", "300ms"}, stdio{strings.NewReader(""), io.Discard, stderr})
	}()
	listening := regexp.MustCompile(`msg="dashboard listening; connecting to ClickHouse" addr=(\S+)`)
	var base string
	testenv.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool {
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			base = "http://" + m[1] + "/"
			return true
		}
		return false
	}, "dash not listening; stderr:\n%s", stderr)
	testenv.Eventually(t, 30*time.Second, 50*time.Millisecond, func() bool {
		code, body := get(t, base+"readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "ClickHouse unreachable")
	}, "readyz never said ClickHouse is unreachable; stderr:\n%s", stderr)
	if code, body := get(t, base); code != http.StatusServiceUnavailable || !strings.Contains(body, "waiting for ClickHouse") {
		t.Errorf("GET / = %d %q; want 503 waiting for ClickHouse", code, body)
	}
	select {
	case c := <-done:
		t.Fatalf("dash exited with %d while ClickHouse did not answer; stderr:\n%s", c, stderr)
	default:
	}
	stop()
	select {
	case c := <-done:
		if c != exitOK {
			t.Fatalf("dash exited with %d after cancel", c)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dash did not stop after cancel")
	}
}
