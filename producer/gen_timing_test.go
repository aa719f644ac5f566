package producer

import (
	"testing"
	"time"
)

// BenchmarkGenerator measures the synthetic event rate, one core.
func BenchmarkGenerator(b *testing.B) {
	g, err := NewGenerator(GenConfig{Seed: 1, Start: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	size := 0
	for range 1000 {
		buf, _ = g.Next(buf[:0])
		size += len(buf)
	}
	b.SetBytes(int64(size / 1000))
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		buf, _ = g.Next(buf[:0])
		n++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
}
