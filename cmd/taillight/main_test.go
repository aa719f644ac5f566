package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestHelpListsCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runMain(context.Background(), []string{"help"}, stdio{strings.NewReader(""), &out, &errb}); code != exitOK {
		t.Fatalf("help = %d: %s", code, errb.String())
	}
	for _, name := range []string{"bench", "dash", "dev", "generate", "ingest", "migrate", "process", "redact", "tail", "version"} {
		if !strings.Contains(out.String(), "\n  "+name+" ") {
			t.Errorf("help does not list %q:\n%s", name, out.String())
		}
	}
	for _, name := range []string{"bench-ref", "bench-process"} {
		if strings.Contains(out.String(), name) {
			t.Errorf("help lists the internal command %q", name)
		}
	}
	out.Reset()
	if code := runMain(context.Background(), []string{"nope"}, stdio{strings.NewReader(""), &out, &errb}); code != exitUsage {
		t.Fatalf("unknown command = %d; want %d", code, exitUsage)
	}
	if !strings.Contains(errb.String(), `unknown command "nope"`) {
		t.Fatalf("unknown command message: %s", errb.String())
	}
}

func TestEnvName(t *testing.T) {
	f := func(flag, want string) {
		t.Helper()
		if got := envName(flag); got != want {
			t.Fatalf("envName(%q) = %q; want %q", flag, got, want)
		}
	}
	f("kafka.brokers", "TAILLIGHT_KAFKA_BROKERS")
	f("flush.max-rows", "TAILLIGHT_FLUSH_MAX_ROWS")
	f("n", "TAILLIGHT_N")
}
