package dash

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/taillight/taillight/internal/testenv"
)

// TestInvocation opens one invocation of the data set (written twice, so
// a replay must show once) and checks every stored column is there.
func TestInvocation(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e := newEnv(t, base)
	at := fmt.Sprint(base.Unix() + 10)
	q := url.Values{"from": {at}, "to": {fmt.Sprint(base.Unix() + 11)}, "script": {"api"}, "topic": {"trace-items"}, "partition": {"0"}, "offset": {"1"}}
	code, r := e.get(t, "/api/query/invocation", q)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, r.Error)
	}
	if len(r.Rows) != 1 {
		t.Fatalf("%d rows; want the invocation once:\n%s", len(r.Rows), r.SQL)
	}
	var want []string
	rows, err := e.admin.Query(t.Context(), "SELECT name FROM system.columns WHERE database = ? AND table = 'trace_items'", e.db)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		want = append(want, n)
	}
	rows.Close()
	var got []string
	v := map[string]any{}
	for i, c := range r.Columns {
		got = append(got, c.Name)
		v[c.Name] = r.Rows[0][i]
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("columns %v; want every stored column %v", got, want)
	}
	for k, w := range map[string]any{
		"script_name": "api", "status": 500.0, "colo": "SJC", "route": "/u/:id", "kafka_offset": 1.0,
		"logs.level": []any{"log", "error"}, "logs.message": []any{"Hello World", "boom: it's broken"},
		"exceptions.name": []any{"TypeError"}, "exceptions.message": []any{"x is undefined"},
		"event_time": float64(base.Unix() + 10),
	} {
		if !reflect.DeepEqual(v[k], w) {
			t.Errorf("%s = %#v; want %#v", k, v[k], w)
		}
	}
}

func TestClassify(t *testing.T) {
	s := &Server{cfg: DefaultConfig()}
	f := func(code int32, status int, msg, wantLimit, wantHint string) {
		t.Helper()
		limit, hint := s.classify(&queryError{status: status, code: code, err: errors.New(msg)})
		if limit != wantLimit || !strings.Contains(hint, wantHint) {
			t.Fatalf("classify(%d, %d, %q) = %q, %q; want %q with %q", code, status, msg, limit, hint, wantLimit, wantHint)
		}
	}
	f(159, 400, "ClickHouse: Timeout exceeded: elapsed 30.1 seconds, maximum: 30 (code 159)", "time", "-dash.max-execution-time")
	f(160, 400, "ClickHouse: Estimated query execution time (40 seconds) is too long (code 160)", "time", "shorter time range")
	f(0, http.StatusGatewayTimeout, "the query ran longer than 30s (-dash.max-execution-time): narrow it (time range, LIMIT)", "time", "30s")
	f(241, 400, "ClickHouse: Memory limit (for query) exceeded: would use 1.18 GiB (code 241)", "memory", "max_memory_usage")
	f(158, 400, "ClickHouse: Limit for rows to read exceeded (code 158)", "rows", "max_rows_to_read")
	f(396, 400, "ClickHouse: Limit for result exceeded, max rows: 10.00 thousand (code 396)", "rows", "-dash.max-rows")
	f(396, 400, "ClickHouse: Limit for result exceeded, max bytes: 1.00 MiB (code 396)", "bytes", "max_result_bytes")
	f(307, 400, "ClickHouse: Limit for (uncompressed) bytes to read exceeded (code 307)", "bytes", "max_bytes_to_read")
	f(62, 400, "ClickHouse: Syntax error (code 62)", "", "")
	f(0, http.StatusBadGateway, "ClickHouse: connection refused", "", "")
}

// TestLimitErrors: a query stopped by a limit says which, through the
// API, on the server's read-only user.
func TestLimitErrors(t *testing.T) {
	e := newEnv(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	dc := DefaultConfig()
	dc.Database = e.db
	dc.MaxExecutionTime = time.Second
	s, err := New(dc, testenv.OpenClickHouse(t, sharedClickHouse(t).Addr(), "readonly", e.db), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := func(url, sql, wantLimit, wantHint string) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"sql": sql})
		resp, err := http.Post(url+"/api/sql", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct {
			Error, Limit, Hint string
			Code               int32
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadRequest || r.Limit != wantLimit || !strings.Contains(r.Hint, wantHint) || r.Error == "" {
			t.Fatalf("%s: %d %+v; want 400, limit %s, a hint with %q and ClickHouse's text", sql, resp.StatusCode, r, wantLimit, wantHint)
		}
	}
	// The time limit: an endless read of system.numbers, through run (the
	// SQL box refuses system tables). ClickHouse stops it, or the client
	// gives up at the limit (the readonly user ignores the setting): either
	// way, the time limit.
	_, err = s.run(t.Context(), "sql", "SELECT count() FROM system.numbers")
	rec := httptest.NewRecorder()
	s.writeQueryError(rec, err)
	var r struct{ Error, Limit, Hint string }
	if jerr := json.NewDecoder(rec.Body).Decode(&r); jerr != nil || (rec.Code != http.StatusBadRequest && rec.Code != http.StatusGatewayTimeout) || r.Limit != "time" || !strings.Contains(r.Hint, "(1s, flag -dash.max-execution-time)") {
		t.Fatalf("endless read under a 1 s limit: %v; answer %d %+v (%v); want 400 or 504, limit time, a hint naming the flag", err, rec.Code, r, jerr)
	}
	// 20,000 arrays of 100,000 numbers need more than the profile's 1 GiB,
	// and the server says so at its first allocation, well inside the time
	// limit however loaded the machine.
	f(e.url, "SELECT length(groupArray(range(100000))) FROM (SELECT arrayJoin(range(20000)))", "memory", "max_memory_usage")
}
