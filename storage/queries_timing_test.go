package storage

import (
	"testing"
	"time"
)

func BenchmarkRenderQuery(b *testing.B) {
	qs, err := Queries()
	if err != nil {
		b.Fatal(err)
	}
	args := QueryArgs{
		"from": time.Unix(1767225600, 0), "to": time.Unix(1767229200, 0), "step": 60,
		"script": "api", "namespace": "customers", "worker_id": "app-1", "colo": "SJC", "outcome": "ok", "search": `it's a \ test`, "limit": 10,
		"status_class": "5xx", "route": "/r", "skip": 0, "topic": "t", "partition": 1, "offset": uint64(7),
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range qs {
			if _, err := RenderQuery(&qs[i], "taillight", args); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(qs))/b.Elapsed().Seconds(), "queries/s")
}

func BenchmarkQuoteString(b *testing.B) {
	s := `a 'quoted' \ string with a newline
and some more text to escape`
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		_ = QuoteString(s)
	}
}
