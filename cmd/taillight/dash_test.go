package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/taillight/taillight/deployments/local"
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
	if testing.Short() {
		t.Skip("needs a real ClickHouse server; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e2e := os.Getenv("TAILLIGHT_E2E") == "1"
	srv, err := local.StartClickHouse(ctx, local.ClickHouseConfig{NoInstall: !e2e, StartTimeout: 90 * time.Second})
	if err != nil {
		if e2e {
			t.Fatalf("TAILLIGHT_E2E=1 and no ClickHouse server: %v", err)
		}
		t.Skipf("no ClickHouse server (%v); install one with deployments/local/install.sh clickhouse, "+
			"or set TAILLIGHT_E2E=1 to make this a failure", err)
	}
	defer srv.Close()
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
	deadline := time.Now().Add(20 * time.Second)
	for base == "" {
		if m := dashURLRE.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case c := <-done:
			t.Fatalf("dash exited with %d; stderr:\n%s", c, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dash not serving after 20s; stderr:\n%s", stderr)
		}
		time.Sleep(10 * time.Millisecond) // polling the log for the address
	}
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
