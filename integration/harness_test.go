package integration

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// These check the backend choice and the unavailable/failed split without
// starting any server.

func TestChooseBackendExplicit(t *testing.T) {
	f := func(env, want string, wantErr bool) {
		t.Helper()
		t.Setenv("TAILLIGHT_BACKEND", env)
		got, err := chooseBackend(context.Background())
		if (err != nil) != wantErr || (!wantErr && got != want) {
			t.Fatalf("TAILLIGHT_BACKEND=%q: chooseBackend = %q, %v; want %q (error %v)", env, got, err, want, wantErr)
		}
	}
	f("local", BackendLocal, false)
	f("containers", BackendContainers, false)
	f("external", BackendExternal, false)
	f("docker", "", true)
}

func TestChooseBackendNeverExternalByItself(t *testing.T) {
	t.Setenv("TAILLIGHT_BACKEND", "")
	t.Setenv("TAILLIGHT_KAFKA_BROKERS", "127.0.0.1:1")
	t.Setenv("TAILLIGHT_CLICKHOUSE_ADDR", "127.0.0.1:1")
	got, err := chooseBackend(context.Background())
	if err != nil || got == BackendExternal {
		t.Fatalf("chooseBackend with only the external variables set = %q, %v; want local or containers", got, err)
	}
}

func TestExternalMissingVariables(t *testing.T) {
	t.Setenv("TAILLIGHT_BACKEND", BackendExternal)
	t.Setenv("TAILLIGHT_KAFKA_BROKERS", "")
	t.Setenv("TAILLIGHT_CLICKHOUSE_ADDR", "127.0.0.1:9000")
	_, err := startEnv(context.Background(), harnessLog())
	if !errors.Is(err, errUnavailable) || !strings.Contains(err.Error(), "TAILLIGHT_KAFKA_BROKERS") {
		t.Fatalf("external backend without TAILLIGHT_KAFKA_BROKERS: err = %v; want errUnavailable naming the variable", err)
	}
}
