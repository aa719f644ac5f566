package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
)

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		{name: "plain", stat: "1234 (taillight) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1000 100000 2000 18446744073709551615",
			want: 3 * time.Second},
		{name: "name with spaces and parens", stat: "77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 1 1",
			want: 100 * time.Millisecond},
		{name: "zero", stat: "5 (x) S 1 5 5 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1 1", want: 0},
		{name: "no name", stat: "5 x S 1 5", wantErr: true},
		{name: "too short", stat: "5 (x) S 1 5 5 0 -1 0 0 0 0 0", wantErr: true},
		{name: "not a number", stat: "5 (x) S 1 5 5 0 -1 0 0 0 0 0 zz 3 0 0 20 0 1 0 1 1 1", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("cpu = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\ttaillight\nVmPeak:\t  900000 kB\nVmHWM:\t   12345 kB\nVmRSS:\t   10000 kB\nThreads:\t9\n"
	for _, tc := range []struct {
		key     string
		want    int64
		wantErr bool
	}{
		{key: "VmHWM", want: 12345 << 10},
		{key: "VmRSS", want: 10000 << 10},
		{key: "Threads", wantErr: true}, // no unit
		{key: "VmSwap", wantErr: true},  // absent
		{key: "VmHW", wantErr: true},    // prefix only
	} {
		got, err := parseStatusKB([]byte(status), tc.key)
		if (err != nil) != tc.wantErr {
			t.Fatalf("%s: err = %v, want error %v", tc.key, err, tc.wantErr)
		}
		if got != tc.want {
			t.Errorf("%s = %d, want %d", tc.key, got, tc.want)
		}
	}
}

func TestProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc: not Linux")
	}
	// Burn some CPU so the tick count must move.
	before, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	x, after := 0, before
	for after <= before && time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
		if after, err = ProcCPU(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	if after <= before {
		t.Fatalf("CPU time stayed %s after 5 s of spinning", after)
	}
	_ = x
	rss, err := ProcPeakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 || rss > 1<<40 {
		t.Errorf("peak RSS %d bytes is not plausible for a Go test", rss)
	}
	if _, err := ProcCPU(-1); err == nil {
		t.Error("ProcCPU(-1) did not fail")
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // reversed: Percentile must sort
	}
	for _, tc := range []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median odd", ms(3, 1, 2), 50, 2 * time.Millisecond},
		{"median even is the lower", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p50 of 100", ms(hundred...), 50, 50 * time.Millisecond},
		{"max", ms(hundred...), 100, 100 * time.Millisecond},
		{"tiny p is the min", ms(5, 9), 0.1, 5 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.ds, tc.p); got != tc.want {
				t.Errorf("Percentile(%v) = %s, want %s", tc.p, got, tc.want)
			}
		})
	}
}

func TestChecks(t *testing.T) {
	r := &Report{EventsRatio: 0.4, CPUPerEventRatio: 3, Processor: Side{PeakRSSMiB: 100},
		Latency: &Latency{P99Ms: 2500}}
	got := map[string]bool{}
	for _, c := range checks(r) {
		got[c.Name] = c.Pass
	}
	want := map[string]bool{"events/s ratio to reference": true, "CPU per event ratio to reference": false,
		"processor peak RSS (MiB)": true, "p99 event-to-queryable (ms)": false}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("check %q: pass = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

// servers skips (or, with TAILLIGHT_E2E=1, fails) when Kafka or ClickHouse
// cannot be had.
func servers(t *testing.T) {
	t.Helper()
	var missing []string
	if err := devenv.KafkaInstalled(""); err != nil {
		missing = append(missing, err.Error())
	}
	if _, err := devenv.FindClickHouse(); err != nil {
		missing = append(missing, err.Error())
	}
	if len(missing) == 0 {
		return
	}
	msg := strings.Join(missing, "; ")
	if testenv.E2E() {
		t.Fatalf("TAILLIGHT_E2E=1 and no real servers: %s", msg)
	}
	t.Skipf("needs Apache Kafka and ClickHouse (run deployments/local/install.sh; TAILLIGHT_E2E=1 makes this a failure): %s", msg)
}

func TestRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Kafka, ClickHouse and the processor: skipped with -short")
	}
	servers(t)
	dir := t.TempDir()
	exe := filepath.Join(dir, "taillight")
	build := exec.Command("go", "build", "-o", exe, "github.com/taillight/taillight/cmd/taillight")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const n = 2000
	prof := filepath.Join(dir, "cpu.pprof")
	rep, err := Run(ctx, Config{Exe: exe, N: n, Partitions: 2, LatencyRate: 400, LatencyDuration: 2 * time.Second,
		CPUProfile: prof, Timeout: 3 * time.Minute, ProcessArgs: []string{"-flush.linger=200ms"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != n || rep.RowsQueryable != n || rep.RollupRequests != n {
		t.Errorf("events %d, rows %d, rollup requests %d; want %d each", rep.Events, rep.RowsQueryable, rep.RollupRequests, n)
	}
	if per := float64(rep.Bytes) / n; per < 500 || per > 3000 {
		t.Errorf("%.0f bytes per event; the generator makes about 1 KB", per)
	}
	for name, s := range map[string]Side{"processor": rep.Processor, "reference": rep.Reference} {
		if s.Seconds <= 0 || s.EventsPerSec <= 0 || s.MBPerSec <= 0 || s.CPUSeconds <= 0 || s.PeakRSSMiB <= 1 {
			t.Errorf("%s figures incomplete: %+v", name, s)
		}
		if d := s.EventsPerSec*s.Seconds - n; d > 1 || d < -1 {
			t.Errorf("%s: %.1f events/s × %.2f s is not %d events", name, s.EventsPerSec, s.Seconds, n)
		}
	}
	if want := rep.Processor.EventsPerSec / rep.Reference.EventsPerSec; rep.EventsRatio != want {
		t.Errorf("events ratio %v, want %v", rep.EventsRatio, want)
	}
	if want := rep.Processor.CPUSecPerMillion / rep.Reference.CPUSecPerMillion; rep.CPUPerEventRatio != want {
		t.Errorf("CPU ratio %v, want %v", rep.CPUPerEventRatio, want)
	}
	if !(0 < rep.FirstRowSeconds && rep.FirstRowSeconds <= rep.Processor.Seconds) {
		t.Errorf("first rows after %.2f s of a %.2f s run", rep.FirstRowSeconds, rep.Processor.Seconds)
	}
	if rep.ClickHouseCPUSecPerMillion <= 0 {
		t.Errorf("ClickHouse CPU per million = %v; the private server's CPU must be measured", rep.ClickHouseCPUSecPerMillion)
	}
	l := rep.Latency
	if l == nil {
		t.Fatal("no latency figures")
	}
	if l.Events != 800 || l.OfferedRate != 400 || l.AchievedRate <= 0 {
		t.Errorf("latency phase: %d events at %.0f offered, %.0f achieved; want 800 at 400", l.Events, l.OfferedRate, l.AchievedRate)
	}
	if l.PeakRSSMiB < rep.Processor.PeakRSSMiB {
		t.Errorf("peak RSS over both phases %.1f MiB < the throughput phase's %.1f MiB", l.PeakRSSMiB, rep.Processor.PeakRSSMiB)
	}
	if !(0 < l.P50Ms && l.P50Ms <= l.P99Ms && l.P99Ms <= l.MaxMs) {
		t.Errorf("latency percentiles out of order: %+v", l)
	}
	if len(rep.Checks) != 4 {
		t.Errorf("%d checks, want 4: %+v", len(rep.Checks), rep.Checks)
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("CPU profile %s not written: %v", prof, err)
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	for _, want := range []string{"events/s", "CPU-seconds per million events", "peak RSS", "p99", "target"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.RowsQueryable != n || back.Latency == nil {
		t.Errorf("JSON report does not round-trip: %v\n%s", err, b)
	}
	t.Logf("\n%s", table.String())
}
