package workerd

import (
	"testing"
	"time"

	"github.com/taillight/taillight/internal/testenv"
)

// BenchmarkTailRoundTrip measures one request through a producer Worker until
// the repository's Tail Worker has POSTed its TraceItem to the ingest
// stand-in: the runtime's tail delivery plus the Tail Worker's own cost.
func BenchmarkTailRoundTrip(b *testing.B) {
	bin := requireWorkerd(b)
	in := newIngest(b, nil)
	wd := startWithTail(b, bin, okProducer, in, nil)
	n := 0
	for b.Loop() {
		get(b, wd.URL(), "/bench", nil)
		n++
		if !testenv.Poll(30*time.Second, 50*time.Microsecond, func() bool { return len(in.snapshot()) >= n }) {
			b.Fatalf("tail POST %d did not arrive; workerd output:\n%s", n, wd.Output())
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "invocations/s")
}
