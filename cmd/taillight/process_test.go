package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
)

func TestProcessFlags(t *testing.T) {
	f := func(args []string, env map[string]string, wantCode int, wantOut string) {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		var out, errb bytes.Buffer
		code := runMain(context.Background(), append([]string{"process"}, args...), stdio{strings.NewReader(""), &out, &errb})
		if code != wantCode {
			t.Fatalf("process %q: exit %d; want %d\nstderr: %s", args, code, wantCode, errb.String())
		}
		if !strings.Contains(out.String()+errb.String(), wantOut) {
			t.Fatalf("process %q: output lacks %q:\n%s%s", args, wantOut, out.String(), errb.String())
		}
	}
	// Help lists the flags the issue names.
	for _, name := range []string{"-kafka.brokers", "-kafka.topic", "-kafka.group", "-flush.max-rows", "-flush.max-bytes",
		"-flush.linger", "-clickhouse.addr", "-clickhouse.database", "-clickhouse.user", "-clickhouse.password", "-listen.metrics"} {
		f([]string{"-h"}, nil, exitOK, name+" ")
	}
	f([]string{"-flush.max-rows", "-1"}, nil, exitUsage, "must be positive")
	f([]string{"-kafka.dlq-topic", "trace-items"}, nil, exitUsage, "must differ from the topic")
	f([]string{"-no-such-flag"}, nil, exitUsage, "no-such-flag")
	// ClickHouse unreachable: the process waits for it (not ready), says so
	// once, and stops cleanly when asked.
	{
		ctx, cancel := context.WithCancel(context.Background())
		errb := &syncBuffer{}
		done := make(chan int, 1)
		go func() {
			done <- runMain(ctx, []string{"process", "-clickhouse.addr", "127.0.0.1:1", "-clickhouse.dial-timeout", "1s",
				"-listen.metrics", "127.0.0.1:0"}, stdio{strings.NewReader(""), io.Discard, errb})
		}()
		testenv.Eventually(t, 30*time.Second, 10*time.Millisecond, func() bool {
			return strings.Contains(errb.String(), "ClickHouse does not answer; waiting for it")
		}, "no waiting message; stderr:\n%s", errb)
		select {
		case c := <-done:
			t.Fatalf("process exited %d while ClickHouse did not answer", c)
		default:
		}
		cancel()
		if c := <-done; c != exitOK {
			t.Fatalf("process exited %d when stopped while waiting; want %d", c, exitOK)
		}
		if n := strings.Count(errb.String(), "does not answer"); n != 1 {
			t.Errorf("the waiting message was logged %d times; want once", n)
		}
	}
	// Environment variables are flags too (last: t.Setenv lasts for the test).
	f(nil, map[string]string{"TAILLIGHT_FLUSH_LINGER": "soon"}, exitUsage, "TAILLIGHT_FLUSH_LINGER")
}

// TestProcessClickHouseAuthMessage: a wrong ClickHouse password is reported
// as such, not as a schema problem to fix with 'taillight migrate', and the
// password appears nowhere in the output.
func TestProcessClickHouseAuthMessage(t *testing.T) {
	testenv.SkipShort(t, "needs a real ClickHouse server")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := testenv.NeedClickHouse(t, ctx, devenv.ClickHouseConfig{StartTimeout: 90 * time.Second})
	const secret = "not-the-password-7f3a9c"
	var out, errb bytes.Buffer
	code := runMain(ctx, []string{"process", "-kafka.brokers", "127.0.0.1:1", "-listen.metrics", "127.0.0.1:0",
		"-clickhouse.addr", srv.Addr(), "-clickhouse.user", "default", "-clickhouse.password", secret},
		stdio{strings.NewReader(""), &out, &errb})
	if code != exitError {
		t.Fatalf("exit %d; want %d\n%s", code, exitError, errb.String())
	}
	all := out.String() + errb.String()
	if !strings.Contains(all, "refused the user or password") || strings.Contains(all, "taillight migrate") {
		t.Fatalf("want an authentication message, not a schema one:\n%s", all)
	}
	if strings.Contains(all, secret) {
		t.Fatalf("the password leaked into the output:\n%s", all)
	}
}
