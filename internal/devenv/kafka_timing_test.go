package devenv

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkStartKafka measures StartKafka until every broker answers metadata,
// plus Close, for one and three brokers (with the class-data archive and the
// cached bootstrap checkpoint once a first start has made them).
func BenchmarkStartKafka(b *testing.B) {
	if err := KafkaInstalled(""); err != nil {
		b.Skipf("Kafka cannot be started: %v", err)
	}
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("brokers=%d", n), func(b *testing.B) {
			var ready time.Duration
			for b.Loop() {
				t0 := time.Now()
				k, err := StartKafka(context.Background(), KafkaConfig{Brokers: n, Dir: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				ready += time.Since(t0)
				if err := k.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(ready.Milliseconds())/float64(b.N), "ms-to-ready/op")
		})
	}
}
