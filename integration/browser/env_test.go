// Package browser runs the dashboard in headless Chromium (chromedp)
// against a private ClickHouse holding a known data set: the pages load
// without JavaScript errors and show what ClickHouse holds.
package browser

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/taillight/taillight/internal/dash"
	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
)

// One private ClickHouse server per test binary, started on first use;
// every test gets its own database on it.
var (
	chShared = testenv.SharedClickHouse{Config: devenv.ClickHouseConfig{StartTimeout: 90 * time.Second}}
	dbSeq    atomic.Int64
)

func TestMain(m *testing.M) { os.Exit(chShared.Run(m)) }

// env is a migrated database and a dashboard on it served over HTTP.
type env struct {
	db    string
	base  time.Time // minute 0 of the data set
	admin driver.Conn
	dash  *dash.Server
	url   string
}

// newEnv is newBareEnv holding testenv.DashboardData(base), written twice
// (a replayed block must not count twice), with tighter limits.
func newEnv(t *testing.T, base time.Time) *env {
	t.Helper()
	e := newBareEnvConfig(t, func(dc *dash.Config) {
		dc.MaxRows = 1000
		dc.MaxExecutionTime = 10 * time.Second
	})
	e.base = base
	b := testenv.DashboardData(base)
	for range 2 {
		testenv.WriteBlock(t, e.admin, e.db, b)
	}
	return e
}

// newBareEnv is newEnv without the data set, with the dashboard's default
// limits.
func newBareEnv(t *testing.T) *env {
	t.Helper()
	return newBareEnvConfig(t, func(*dash.Config) {})
}

// newBareEnvConfig is newBareEnv with the dashboard's config changed by set.
func newBareEnvConfig(t *testing.T, set func(*dash.Config)) *env {
	t.Helper()
	srv := chShared.Get(t)
	e := &env{db: fmt.Sprintf("dash_%d_%d", os.Getpid(), dbSeq.Add(1))}
	e.admin = testenv.OpenClickHouse(t, srv.Addr(), "default", "default")
	t.Cleanup(func() { _ = e.admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+e.db) })
	testenv.Migrate(t, e.admin, e.db)
	dc := dash.DefaultConfig()
	dc.Database = e.db
	set(&dc)
	var err error
	if e.dash, err = dash.New(dc, testenv.OpenClickHouse(t, srv.Addr(), "readonly", e.db), nil, nil); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(e.dash)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}
