package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/storage"
)

func TestFmtSpan(t *testing.T) {
	f := func(d time.Duration, want string) {
		t.Helper()
		if got := fmtSpan(d); got != want {
			t.Errorf("fmtSpan(%s) = %q; want %q", d, got, want)
		}
	}
	f(96*time.Hour, "4d")
	f(2*time.Hour, "2h")
	f(90*time.Minute, "90m")
	f(1500*time.Millisecond, "1.5s")
	if got := fmtWindow(24 * time.Hour); got != "24h" {
		t.Errorf("fmtWindow(24h) = %q; want 24h", got)
	}
}

func TestMedian(t *testing.T) {
	f := func(xs []float64, want float64) {
		t.Helper()
		if got := median(xs); got != want {
			t.Errorf("median(%v) = %v; want %v", xs, got, want)
		}
	}
	f(nil, 0)
	f([]float64{3}, 3)
	f([]float64{5, 1, 3}, 3)
	f([]float64{4, 1, 3, 2}, 2.5)
}

func TestQueryConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  QueryConfig
		ok   bool
	}{
		{"defaults", QueryConfig{}, true},
		{"descending histories", QueryConfig{Histories: []time.Duration{2 * time.Hour, time.Hour}}, false},
		{"history off the commit grid", QueryConfig{Histories: []time.Duration{90 * time.Second}}, false},
		{"seal off the commit grid", QueryConfig{SealEvery: 90 * time.Second}, false},
		{"negative rate", QueryConfig{Rate: -1}, false},
		{"bad database", QueryConfig{Database: "a-b"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v; want ok %v", err, tc.ok)
			}
		})
	}
}

// TestRunQueries runs the query benchmark on tiny settings against a
// private ClickHouse: two hours at 5 events/s, measured at one and two.
func TestRunQueries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv := testenv.NeedClickHouse(t, ctx, devenv.ClickHouseConfig{StartTimeout: 90 * time.Second})
	const rate = 5
	rep, err := RunQueries(ctx, QueryConfig{ClickHouse: srv.Addr(), Rate: rate, Runs: 2, MergeWait: time.Minute,
		Histories: []time.Duration{time.Hour, 2 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	t.Logf("\n%s", table.String())

	saved, err := storage.Queries()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Sizes) != 2 {
		t.Fatalf("%d sizes measured; want 2", len(rep.Sizes))
	}
	for i, s := range rep.Sizes {
		if want := int64(rate * 3600 * (i + 1)); s.Events != want {
			t.Errorf("@%s: %d events written; want %d", s.History, s.Events, want)
		}
		// Every event once in the raw table and in every rollup it feeds.
		if tot := s.Totals; tot.RawRows != uint64(s.Events) || tot.ScriptRequests != uint64(s.Events) ||
			tot.EndpointRequests != uint64(s.FetchEvents) || tot.ColoRequests != uint64(s.FetchEvents) {
			t.Errorf("@%s: read back %+v; want %d events, %d of them fetch", s.History, tot, s.Events, s.FetchEvents)
		}
		if s.FetchEvents == 0 || s.FetchEvents == s.Events {
			t.Errorf("@%s: %d fetch events of %d; the generator mixes kinds", s.History, s.FetchEvents, s.Events)
		}
		stats := map[string]TableStats{}
		for _, ts := range s.Tables {
			stats[ts.Table] = ts
		}
		if ts := stats["trace_items"]; ts.Count != uint64(s.Events) || ts.PartRows != ts.Count || ts.BytesOnDisk == 0 {
			t.Errorf("@%s: trace_items %+v; want %d rows", s.History, ts, s.Events)
		}
		// Sealing ran: sealed minutes exist and the journal holds fewer
		// marks than blocks were committed.
		if s.Sealed == 0 || stats["rollup_minutes"].Count == 0 || stats["rollup_journal"].Count == 0 {
			t.Errorf("@%s: %d blocks sealed; rollup_minutes %+v, rollup_journal %+v", s.History, s.Sealed, stats["rollup_minutes"], stats["rollup_journal"])
		}
		if len(s.Queries) != len(saved) {
			t.Errorf("@%s: %d queries timed; want every saved query (%d)", s.History, len(s.Queries), len(saved))
		}
		for j, q := range s.Queries {
			if j < len(saved) && q.Name != saved[j].Name {
				t.Errorf("@%s: query %d is %q; want %q", s.History, j, q.Name, saved[j].Name)
			}
			if len(q.Windows) != len(queryWindows) {
				t.Errorf("@%s %s: %d windows; want %d", s.History, q.Name, len(q.Windows), len(queryWindows))
			}
			for _, w := range q.Windows {
				// An error (a query over the server's limits) is a finding
				// the report shows, not a broken benchmark.
				if w.Error != "" {
					t.Logf("@%s %s %s: %s", s.History, q.Name, w.Window, w.Error)
					continue
				}
				if !(0 < w.MinMs && w.MinMs <= w.MedianMs && w.MedianMs <= w.MaxMs) || w.ServerMs <= 0 {
					t.Errorf("@%s %s %s: timings %+v", s.History, q.Name, w.Window, w)
				}
			}
		}
		panels := 0
		for _, q := range saved {
			if q.Panel {
				panels++
			}
		}
		if fl := s.FirstLoad; fl.Requests != panels+2 || fl.FirstMs <= 0 || fl.MedianMs <= 0 {
			t.Errorf("@%s: first load %+v; want %d requests", s.History, fl, panels+2)
		}
	}
	// Two hours in, the first journal hour is sealed and dropped.
	if last := rep.Sizes[1]; last.Dropped == 0 {
		t.Errorf("no journal hour dropped after %s", last.History)
	}
	// Checks: consistency at each size, then per query 1h, 24h and growth,
	// then the first load.
	if want := 2 + 3*len(saved) + 1; len(rep.Checks) != want {
		t.Errorf("%d checks; want %d", len(rep.Checks), want)
	}
	for _, c := range rep.Checks[:2] {
		if !c.Pass {
			t.Errorf("check failed: %+v", c)
		}
	}
	for _, q := range saved {
		if !strings.Contains(table.String(), q.Name) {
			t.Errorf("table lacks %s", q.Name)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back QueryReport
	if err := json.Unmarshal(b, &back); err != nil || len(back.Sizes) != 2 || back.Sizes[1].Events != rep.Sizes[1].Events {
		t.Errorf("JSON report does not round-trip: %v", err)
	}
}
