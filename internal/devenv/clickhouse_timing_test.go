package devenv

import (
	"context"
	"testing"
	"time"
)

// BenchmarkClickHouseStart measures a start (process up, answering SELECT 1
// over HTTP, native port accepting) and a graceful stop of a private server
// on an existing data directory, reported separately.
func BenchmarkClickHouseStart(b *testing.B) {
	if _, err := FindClickHouse(); err != nil {
		b.Skipf("skipping: %v", err)
	}
	ctx := context.Background()
	ch, err := StartClickHouse(ctx, ClickHouseConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Stop(ctx); err != nil {
		b.Fatal(err)
	}
	var start, stop time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := ch.Start(ctx); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := ch.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		start += t1.Sub(t0)
		stop += time.Since(t1)
	}
	b.ReportMetric(float64(start.Milliseconds())/float64(b.N), "start-ms/op")
	b.ReportMetric(float64(stop.Milliseconds())/float64(b.N), "stop-ms/op")
}
