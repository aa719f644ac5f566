// Package testenv holds what taillight's tests need around real servers:
// launchers for ZooKeeper, a ClickHouse cluster and the Workers runtime
// (workerd), shared servers started on first use, "a real server or skip"
// (fail instead under TAILLIGHT_E2E=1), and the one way tests wait for a
// condition: Poll and Eventually, with a deadline. It builds on
// internal/devenv's ClickHouse and Kafka launchers.
//
// Nothing here installs anything: `make deps` (deployments/local/install.sh)
// does. Only tests import this package; the taillight binary must not (a
// test of cmd/taillight checks its dependencies).
package testenv

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taillight/taillight/internal/devenv"
)

// E2E reports whether TAILLIGHT_E2E=1: a missing real server then fails a
// test instead of skipping it.
func E2E() bool { return os.Getenv("TAILLIGHT_E2E") == "1" }

// SkipShort skips the test under -short; what says what it needs.
func SkipShort(tb testing.TB, what string) {
	tb.Helper()
	if testing.Short() {
		tb.Skip(what + "; skipped under -short")
	}
}

// Unavailable fails the test under TAILLIGHT_E2E=1 and skips it otherwise.
// missing names what is not there; hint says how to get it (may be empty).
func Unavailable(tb testing.TB, missing, hint string, err error) {
	tb.Helper()
	if E2E() {
		tb.Fatalf("TAILLIGHT_E2E=1 and %s: %v", missing, err)
	}
	if hint != "" {
		hint += ", or "
	}
	tb.Skipf("%s (%v); %sset TAILLIGHT_E2E=1 to make this a failure", missing, err, hint)
}

const clickHouseHint = "install one with make deps or deployments/local/install.sh clickhouse"

// NoClickHouse is Unavailable for a ClickHouse server that could not start.
func NoClickHouse(tb testing.TB, err error) {
	tb.Helper()
	Unavailable(tb, "no ClickHouse server", clickHouseHint, err)
}

// NeedClickHouse starts a private ClickHouse server for the test, closed by
// tb.Cleanup. It skips under -short, and when no server can be had (fails
// under TAILLIGHT_E2E=1). ctx bounds the start only.
func NeedClickHouse(tb testing.TB, ctx context.Context, cfg devenv.ClickHouseConfig) *devenv.ClickHouse {
	tb.Helper()
	SkipShort(tb, "needs a real ClickHouse server")
	srv, err := devenv.StartClickHouse(ctx, cfg)
	if err != nil {
		NoClickHouse(tb, err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	return srv
}

// SharedClickHouse is one ClickHouse server for a whole test binary, started
// on first use (each test takes its own database on it). TestMain calls
// Close after m.Run. Safe for parallel tests.
type SharedClickHouse struct {
	// Config is the server's.
	Config devenv.ClickHouseConfig
	// StartTimeout bounds the start (3 minutes if 0).
	StartTimeout time.Duration

	once sync.Once
	srv  *devenv.ClickHouse
	err  error
}

// Get returns the server, starting it on the first call. It skips under
// -short and when no server can be had (fails under TAILLIGHT_E2E=1).
func (s *SharedClickHouse) Get(tb testing.TB) *devenv.ClickHouse {
	tb.Helper()
	SkipShort(tb, "needs a real ClickHouse server")
	s.once.Do(func() {
		d := s.StartTimeout
		if d <= 0 {
			d = 3 * time.Minute
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		s.srv, s.err = devenv.StartClickHouse(ctx, s.Config)
	})
	if s.err != nil {
		NoClickHouse(tb, s.err)
	}
	return s.srv
}

// Run runs the package's tests (m.Run) and then Close, and returns their
// exit code: TestMain is os.Exit(shared.Run(m)).
func (s *SharedClickHouse) Run(m *testing.M) int {
	code := m.Run()
	s.Close()
	return code
}

// Close stops the server if Get started one.
func (s *SharedClickHouse) Close() {
	if s.srv != nil {
		_ = s.srv.Close()
	}
}

// NeedCluster starts ZooKeeper and a ClickHouse cluster for the test,
// closed by tb.Cleanup; on failure the servers' error logs are written to
// the test log. It skips under -short and when the servers cannot be had
// (fails under TAILLIGHT_E2E=1).
func NeedCluster(tb testing.TB, ctx context.Context, cfg ClickHouseClusterConfig) *ClickHouseClusterServers {
	tb.Helper()
	SkipShort(tb, "needs ZooKeeper and real ClickHouse servers")
	cs, err := StartClickHouseCluster(ctx, cfg)
	if err != nil {
		Unavailable(tb, "no ZooKeeper + ClickHouse cluster",
			"install them with deployments/local/install-zookeeper.sh and deployments/local/install.sh clickhouse", err)
	}
	tb.Cleanup(func() { _ = cs.Close() })
	// Runs before Close (cleanups run last-in first-out).
	tb.Cleanup(func() {
		if tb.Failed() {
			for i, l := range cs.ErrorLogs(8) {
				tb.Logf("server %d errors in server.err.log:\n%s", i+1, l)
			}
		}
	})
	return cs
}

// NeedWorkerd returns the workerd binary, skipping under -short and when there
// is none (fails under TAILLIGHT_E2E=1); the error names the install script.
func NeedWorkerd(tb testing.TB) string {
	tb.Helper()
	SkipShort(tb, "needs the real Workers runtime (workerd)")
	bin, err := FindWorkerd()
	if err != nil {
		Unavailable(tb, "no workerd", "", err)
	}
	return bin
}

// Eventually calls cond every interval until it returns true, and fails the
// test (tb.Fatal, so from the test's goroutine only) when timeout passes
// first; msgAndArgs (a format and its arguments) say what was awaited.
func Eventually(tb testing.TB, timeout, every time.Duration, cond func() bool, msgAndArgs ...any) {
	tb.Helper()
	if !Poll(timeout, every, cond) {
		tb.Fatalf("after %v: %s", timeout, message(msgAndArgs))
	}
}

// Poll calls cond every interval until it returns true (Poll returns true) or
// timeout passes (Poll returns false after one last call).
func Poll(timeout, every time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return true
			}
		case <-deadline.C:
			return cond()
		}
	}
}

func message(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return "condition not met"
	}
	if f, ok := msgAndArgs[0].(string); ok {
		return fmt.Sprintf(f, msgAndArgs[1:]...)
	}
	return fmt.Sprint(msgAndArgs...)
}

// ProcGone reports whether pid no longer runs: absent, or a zombie awaiting
// its reaper (field 3 of /proc/<pid>/stat, after the parenthesised name).
func ProcGone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}
