package redact

import (
	"testing"

	"github.com/taillight/taillight/schemas"
)

// A typical request URL with nothing to redact: short runs, a query.
const cleanURL = "https://api.example.com/v1/accounts/settings/notifications?page=2&per_page=50&sort=created_at&order=desc&filter=active&lang=en-US&utm_source=newsletter&utm_campaign=spring"

func BenchmarkURL(b *testing.B) {
	for _, c := range []struct{ name, url string }{
		{"clean", cleanURL},
		{"clean-long-runs", "https://api.example.com/documentation/internationalization/configuration_reference/authentication_overview?section=troubleshooting_guidelines"},
		{"match", "https://api.example.com/v1/users/0123456789abcdef0123456789abcdef/cards?number=4111-1111-1111-1111"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.url)))
			var out string
			for b.Loop() {
				out = URL(c.url)
			}
			_ = out
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "urls/s")
		})
	}
}

// BenchmarkBaseline sums the bytes of cleanURL: the cheapest possible pass,
// to calibrate the other figures on a shared or throttled machine.
func BenchmarkBaseline(b *testing.B) {
	b.SetBytes(int64(len(cleanURL)))
	sum := 0
	for b.Loop() {
		for i := 0; i < len(cleanURL); i++ {
			sum += int(cleanURL[i])
		}
	}
	if sum == 42 {
		b.Log(sum)
	}
}

var sinkBool bool

func BenchmarkSensitiveHeader(b *testing.B) {
	names := []string{"accept", "accept-encoding", "cf-connecting-ip", "content-type", "host", "user-agent", "x-forwarded-for", "authorization"}
	b.ReportAllocs()
	for b.Loop() {
		for _, n := range names {
			sinkBool = SensitiveHeader(n)
		}
	}
}

// typicalItem is a ~1 KB fetch item as the runtime sends it: ten headers, a
// log line, no secrets left (the runtime redacted them).
const typicalItem = `{"event":{"request":{"url":"https://api.example.com/v1/users/42/orders?page=2&sort=desc","method":"GET","headers":{"accept":"application/json","accept-encoding":"gzip, br","accept-language":"en-US,en;q=0.9","authorization":"REDACTED","cf-connecting-ip":"203.0.113.7","cf-ipcountry":"DE","cf-ray":"8c2f1a2b3c4d5e6f-FRA","content-type":"application/json","host":"api.example.com","user-agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"},"cf":{"colo":"FRA","country":"DE","asn":64496}},"response":{"status":200}},"eventTimestamp":1795312410177,"logs":[{"message":["handled order list",{"count":20,"page":2,"ms":14.5}],"level":"log","timestamp":1795312410180}],"exceptions":[],"diagnosticsChannelEvents":[],"scriptName":"orders-api","outcome":"ok","executionModel":"stateless","truncated":false,"cpuTime":3,"wallTime":17}`

func benchItem(b *testing.B, r Rules) {
	var it schemas.TraceItem
	if err := schemas.Unmarshal([]byte(typicalItem), &it); err != nil {
		b.Fatal(err)
	}
	p, err := New(r)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalItem)))
	for b.Loop() {
		p.Item(&it)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
}

func BenchmarkItem(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchItem(b, Rules{}) })
	b.Run("all-rules", func(b *testing.B) { benchItem(b, allRules()) })
}

func BenchmarkText(b *testing.B) {
	p, _ := New(allRules())
	const msg = "    at Object.fetch (producer.js:60:36)\n    at async handleRequest (index.js:120:5) order 1234 for user 42 failed: upstream returned 503"
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		p.Text(msg)
	}
}

func BenchmarkRoute(b *testing.B) {
	r, _ := NewRouter([]string{"/api/admin/*", "/static/*"})
	for _, c := range []struct{ name, url string }{
		{"unchanged", "https://api.example.com/v1/accounts/settings?page=2"},
		{"ids", "https://api.example.com/v1/users/12345/orders/123e4567-e89b-12d3-a456-426614174000?expand=items"},
		{"pattern", "https://api.example.com/static/css/app.css"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.url)))
			for b.Loop() {
				r.Route(c.url)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "urls/s")
		})
	}
}

// Zero allocations on the no-match paths are part of the contract.
func TestNoMatchDoesNotAllocate(t *testing.T) {
	var it schemas.TraceItem
	if err := schemas.Unmarshal([]byte(typicalItem), &it); err != nil {
		t.Fatal(err)
	}
	p := mustNew(t, allRules())
	r, _ := NewRouter([]string{"/static/*"})
	for name, fn := range map[string]func(){
		"URL":             func() { URL(cleanURL) },
		"SensitiveHeader": func() { sinkBool = SensitiveHeader("user-agent") },
		"Policy.URL":      func() { p.URL(cleanURL) },
		"Text":            func() { p.Text("at Object.fetch (producer.js:60:36) order 1234") },
		"Item":            func() { p.Item(&it) },
		"Route":           func() { r.Route(cleanURL) },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocs per run; want 0", name, n)
		}
	}
}
