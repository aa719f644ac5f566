package producer

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/taillight/taillight/schemas"
)

func generate(tb testing.TB, cfg GenConfig, n int) ([]byte, []Truth) {
	tb.Helper()
	g, err := NewGenerator(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var out []byte
	truths := make([]Truth, 0, n)
	for range n {
		var tr Truth
		out, tr = g.Next(out)
		out = append(out, '\n')
		truths = append(truths, tr)
	}
	return out, truths
}

func TestGeneratorDeterministic(t *testing.T) {
	start := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	a, _ := generate(t, GenConfig{Seed: 42, Start: start}, 3000)
	b, _ := generate(t, GenConfig{Seed: 42, Start: start}, 3000)
	if !bytes.Equal(a, b) {
		t.Fatal("same seed and start gave different output")
	}
	c, _ := generate(t, GenConfig{Seed: 43, Start: start}, 3000)
	if bytes.Equal(a, c) {
		t.Fatal("different seeds gave the same output")
	}
	if _, err := NewGenerator(GenConfig{Seed: 1}); err == nil {
		t.Fatal("zero start accepted")
	}
}

// idRuns splits a URL into maximal runs of ID characters, as the redaction
// rules do.
func idRuns(s string) []string {
	isID := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '_'
	}
	var runs []string
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isID(s[j]) {
			j++
		}
		if j > i {
			runs = append(runs, s[i:j])
			i = j
		} else {
			i++
		}
	}
	return runs
}

// redactable reports whether a URL run matches one of the default rules
// (written here independently of processor/redact).
func redactable(run string) bool {
	var hex, digits, upper, lower, nonHexLetter int
	for i := 0; i < len(run); i++ {
		c := run[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			hex++
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			hex++
		}
		switch {
		case c >= 'A' && c <= 'Z':
			upper++
			if c > 'F' {
				nonHexLetter++
			}
		case c >= 'a' && c <= 'z':
			lower++
			if c > 'f' {
				nonHexLetter++
			}
		}
	}
	if hex >= 32 && nonHexLetter == 0 {
		return true
	}
	if len(run) >= 21 && digits >= 2 && upper >= 2 && lower >= 2 {
		return true
	}
	if upper+lower == 0 && digits >= 13 && digits <= 19 && !strings.ContainsAny(run, "+") {
		sum, dbl := 0, false
		for i := len(run) - 1; i >= 0; i-- {
			if run[i] < '0' || run[i] > '9' {
				continue
			}
			v := int(run[i] - '0')
			if dbl {
				if v *= 2; v > 9 {
					v -= 9
				}
			}
			sum += v
			dbl = !dbl
		}
		return sum%10 == 0
	}
	return false
}

var redactedHeaders = []string{"authorization", "cookie", "x-api-key", "x-auth-token"}

// TestGeneratorItems decodes every item, checks it against its ground truth,
// and checks the mix covers what the pipeline must handle.
func TestGeneratorItems(t *testing.T) {
	start := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	const n = 5000
	out, truths := generate(t, GenConfig{Seed: 9, Start: start, Step: 10 * time.Millisecond}, n)
	lines := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
	if len(lines) != n {
		t.Fatalf("%d lines; want %d", len(lines), n)
	}
	seen := map[string]int{}
	totalBytes := 0
	for i, line := range lines {
		tr := truths[i]
		var it schemas.TraceItem
		if err := schemas.Unmarshal(line, &it); err != nil {
			t.Fatalf("item %d does not decode: %v\n%s", i, err, line)
		}
		if tr.Bytes != len(line) || tr.Index != i {
			t.Fatalf("item %d: truth bytes %d index %d; line is %d bytes", i, tr.Bytes, tr.Index, len(line))
		}
		totalBytes += len(line)
		if it.Kind() != tr.Kind || it.Script() != tr.Script || it.Outcome != tr.Outcome || it.Status() != tr.Status ||
			it.CPUTime != tr.CPUTime || it.WallTime != tr.WallTime || *it.EventTimestamp != tr.EventTime.UnixMilli() {
			t.Fatalf("item %d disagrees with its truth %+v:\n%s", i, tr, line)
		}
		if it.CPUTime <= 0 || it.WallTime < it.CPUTime {
			t.Errorf("item %d: cpuTime %v wallTime %v", i, it.CPUTime, it.WallTime)
		}
		if d := tr.EventTime.Sub(start); d < -3*time.Minute || d > n*10*time.Millisecond+time.Second {
			t.Errorf("item %d: event time %s is %s from start", i, tr.EventTime, d)
		}
		if tr.Error != (tr.Outcome != "ok" || tr.Status >= 500) {
			t.Errorf("item %d: Error %v for outcome %s status %d", i, tr.Error, tr.Outcome, tr.Status)
		}
		for _, s := range append(append(tr.Secrets, tr.Kept...), tr.OptIn...) {
			if !bytes.Contains(line, []byte(s)) {
				t.Errorf("item %d: planted %q not in the item", i, s)
			}
		}
		seen["outcome:"+tr.Outcome]++
		seen["kind:"+string(tr.Kind)]++
		if len(it.Logs) != tr.Logs || len(it.Exceptions) != tr.Exceptions {
			t.Errorf("item %d: %d logs %d exceptions; truth %d %d", i, len(it.Logs), len(it.Exceptions), tr.Logs, tr.Exceptions)
		}
		if tr.Logs > 0 {
			seen["logs"]++
		}
		if tr.Exceptions > 0 {
			seen["exceptions"]++
		}
		if len(tr.OptIn) > 0 {
			seen["optin"]++
		}
		if tr.Kind != schemas.KindFetch {
			continue
		}
		req := it.Event.Request
		if req.URL != tr.URL || req.Method != tr.Method || !strings.HasPrefix(tr.URL, "https://"+tr.Host+tr.Path) {
			t.Fatalf("item %d: request %s %s; truth %s %s", i, req.Method, req.URL, tr.Method, tr.URL)
		}
		if strings.Count(tr.Route, "/") != strings.Count(tr.Path, "/") {
			t.Errorf("item %d: route %s does not match path %s", i, tr.Route, tr.Path)
		}
		if strings.Contains(tr.Route, ":id") {
			seen["route-with-id"]++
		}
		colo := "unknown"
		if len(req.Cf) > 0 {
			if i := bytes.Index(req.Cf, []byte(`"colo":"`)); i >= 0 {
				colo = string(req.Cf[i+8 : i+11])
			}
		}
		if colo != tr.Colo {
			t.Errorf("item %d: cf colo %s; truth %s", i, colo, tr.Colo)
		}
		seen["colo:"+tr.Colo]++
		seen["method:"+tr.Method]++
		runs := idRuns(req.URL)
		for _, s := range tr.Secrets {
			if strings.Contains(req.URL, s) {
				if !contains(runs, s) || !redactable(s) {
					t.Errorf("item %d: URL secret %q is not a whole run the default rules redact (%s)", i, s, req.URL)
				}
				switch {
				case !strings.ContainsFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '-' }):
					seen["url:card"]++
				case len(s) >= 32 && !strings.ContainsAny(s, "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ"):
					seen["url:hex"]++
				default:
					seen["url:b64"]++
				}
				continue
			}
			found := false
			for _, h := range req.Headers {
				if h.Value == s {
					found = true
					if !contains(redactedHeaders, h.Name) {
						t.Errorf("item %d: secret in header %s, which the default policy keeps", i, h.Name)
					}
					seen["header:"+h.Name]++
				}
			}
			if !found {
				t.Errorf("item %d: secret %q neither in the URL nor a header value", i, s)
			}
		}
		for _, s := range tr.Kept {
			for _, h := range req.Headers {
				if h.Value == s {
					seen["kept:"+h.Name]++
				}
			}
		}
	}
	for _, k := range []string{
		"outcome:ok", "outcome:exception", "outcome:exceededCpu", "outcome:canceled",
		"kind:fetch", "kind:scheduled", "kind:queue", "kind:rpc", "kind:alarm",
		"logs", "exceptions", "optin", "route-with-id", "colo:unknown", "colo:FRA",
		"method:GET", "method:POST", "method:DELETE",
		"url:card", "url:hex", "url:b64",
		"header:authorization", "header:cookie", "header:x-api-key", "kept:x-cookie", "kept:x-password",
	} {
		if seen[k] == 0 {
			t.Errorf("no %s in %d items", k, n)
		}
	}
	if avg := totalBytes / n; avg < 700 || avg > 1500 {
		t.Errorf("average item is %d bytes; want about 1 KB", avg)
	}
	scripts := map[string]bool{}
	for _, tr := range truths {
		scripts[tr.Script] = true
	}
	if len(scripts) < 20 {
		t.Errorf("%d scripts; want the 24 configured", len(scripts))
	}
	t.Logf("average item %d bytes; mix %v", totalBytes/n, seen)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestLuhnCheck(t *testing.T) {
	f := func(payload string, want byte) {
		t.Helper()
		if got := luhnCheck([]byte(payload)); got != want {
			t.Errorf("luhnCheck(%s) = %d; want %d", payload, got, want)
		}
	}
	f("411111111111111", 1) // 4111 1111 1111 1111
	f("555555555555444", 4) // 5555 5555 5555 4444
	f("7992739871", 3)
}
