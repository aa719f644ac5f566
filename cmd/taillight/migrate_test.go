package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
)

func runMigrateCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runMain(context.Background(), append([]string{"migrate"}, args...), stdio{strings.NewReader(""), &out, &errOut})
	return code, out.String(), errOut.String()
}

func TestMigrateUsage(t *testing.T) {
	f := func(want int, args ...string) {
		t.Helper()
		if code, _, errOut := runMigrateCmd(t, args...); code != want {
			t.Fatalf("migrate %q = %d (%s); want %d", args, code, errOut, want)
		}
	}
	f(exitUsage, "-clickhouse.addr", "nohostport")
	f(exitUsage, "-clickhouse.database", "a-b")
	f(exitUsage, "-nope")
	f(exitUsage, "extra")
	f(exitOK, "-h")
	// Nothing listens on port 1: a runtime error, not a usage error.
	f(exitError, "-clickhouse.addr", "127.0.0.1:1", "-clickhouse.dial-timeout", "2s")
}

func TestMigrateCommand(t *testing.T) {
	testenv.SkipShort(t, "needs a real ClickHouse server")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := testenv.NeedClickHouse(t, ctx, devenv.ClickHouseConfig{StartTimeout: 90 * time.Second})
	db := fmt.Sprintf("tl_migrate_%d", os.Getpid())
	flags := []string{"-clickhouse.addr", srv.Addr(), "-clickhouse.database", db}

	code, out, errOut := runMigrateCmd(t, append(flags, "-dry-run")...)
	if code != exitOK {
		t.Fatalf("migrate -dry-run = %d: %s", code, errOut)
	}
	for _, want := range []string{"001_trace_items.sql", "pending", "CREATE TABLE IF NOT EXISTS " + db + ".trace_items", "dry run: nothing changed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("migrate -dry-run output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "{{") {
		t.Fatalf("migrate -dry-run printed unrendered placeholders:\n%s", out)
	}

	code, out, errOut = runMigrateCmd(t, flags...)
	if code != exitOK || !strings.Contains(out, "001_trace_items.sql") || !strings.Contains(out, "applied") {
		t.Fatalf("migrate = %d:\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "CREATE TABLE") {
		t.Fatalf("migrate without -v printed statements:\n%s", out)
	}
	code, out, errOut = runMigrateCmd(t, flags...)
	if code != exitOK || !strings.Contains(out, "already applied") {
		t.Fatalf("second migrate = %d:\n%s%s", code, out, errOut)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if strings.HasSuffix(line, " applied") && !strings.HasSuffix(line, "already applied") {
			t.Fatalf("second migrate applied something again: %q\n%s", line, out)
		}
	}
}
