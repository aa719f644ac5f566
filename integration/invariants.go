package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/memsink"
)

// Helpers shared by this package's processor tests and integration/chaos:
// the taillight binary, and reading the rollup views back as memsink totals
// to compare with a ground truth.

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// TaillightBinary builds cmd/taillight once per test binary, as users build
// it, and returns its path (in a temporary directory left for the OS to
// clean).
func TaillightBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "taillight-it-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "taillight")
		// Built in the taillight module itself, so with its dependency
		// versions, not this module's.
		root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/taillight/taillight").Output()
		if err != nil {
			buildOnce.err = fmt.Errorf("find the taillight module: %v", err)
			return
		}
		cmd := exec.Command("go", "build", "-o", buildOnce.path, "./cmd/taillight")
		cmd.Dir = strings.TrimSpace(string(root))
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// ReadTotals runs query and adds what scan makes of each row to out,
// failing t on any error.
func ReadTotals(t testing.TB, ctx context.Context, conn driver.Conn, query string, out map[memsink.Key]memsink.Totals,
	scan func(driver.Rows) (memsink.Key, memsink.Totals, error)) {
	t.Helper()
	rows, err := conn.Query(ctx, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	for rows.Next() {
		k, v, err := scan(rows)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		// Summed: the views also split by dispatch namespace and Worker,
		// which the keys read here leave out.
		sum := out[k]
		sum.Merge(v)
		out[k] = sum
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// ReadViews reads the three rollup views of database db (endpoint_errors_1m,
// colo_requests_1m, script_outcomes_1m) as memsink totals.
func ReadViews(t testing.TB, conn driver.Conn, db string) map[memsink.Key]memsink.Totals {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := map[memsink.Key]memsink.Totals{}
	for _, view := range []struct {
		kind  sinks.RollupKind
		query string
		dst   func(*memsink.Key, *memsink.Totals) []any // the columns after minute
	}{
		{sinks.KindEndpoint, "SELECT minute, script_name, host, method, route, requests, errors, exceptions, status_4xx, status_5xx FROM %s.endpoint_errors_1m",
			func(k *memsink.Key, v *memsink.Totals) []any {
				return []any{&k.ScriptName, &k.Host, &k.Method, &k.Route, &v.Requests, &v.Errors, &v.Exceptions, &v.Status4xx, &v.Status5xx}
			}},
		{sinks.KindColo, "SELECT minute, colo, script_name, outcome, requests FROM %s.colo_requests_1m",
			func(k *memsink.Key, v *memsink.Totals) []any {
				return []any{&k.Colo, &k.ScriptName, &k.Outcome, &v.Requests}
			}},
		{sinks.KindScript, "SELECT minute, script_name, outcome, requests, cpu_time_ms_sum, wall_time_ms_sum FROM %s.script_outcomes_1m",
			func(k *memsink.Key, v *memsink.Totals) []any {
				return []any{&k.ScriptName, &k.Outcome, &v.Requests, &v.CPUTimeMsSum, &v.WallTimeMsSum}
			}},
	} {
		ReadTotals(t, ctx, conn, fmt.Sprintf(view.query, db), got, func(r driver.Rows) (memsink.Key, memsink.Totals, error) {
			k := memsink.Key{Kind: view.kind}
			var v memsink.Totals
			var m time.Time
			err := r.Scan(append([]any{&m}, view.dst(&k, &v)...)...)
			k.Minute = m.Unix()
			return k, v, err
		})
	}
	return got
}

// DiffTotals reports (the first ten of) the rows where got differs from
// want, labelled with what, and returns how many differ.
func DiffTotals(t testing.TB, what string, got, want map[memsink.Key]memsink.Totals) int {
	t.Helper()
	bad := 0
	for k, w := range want {
		if got[k] != w {
			if bad++; bad <= 10 {
				t.Errorf("%s: row %+v = %+v; want %+v", what, k, got[k], w)
			}
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			if bad++; bad <= 10 {
				t.Errorf("%s: unexpected row %+v = %+v", what, k, v)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d rows differ", what, bad)
	}
	return bad
}
