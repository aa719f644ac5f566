package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := With(reg).Counter("x_total", "x")
	b := With(reg).Counter("x_total", "x")
	a.Inc()
	b.Inc()
	if got := testutil.ToFloat64(a); got != 2 {
		t.Fatalf("the second registration does not share the first's series: %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "x_total"); err != nil || n != 1 {
		t.Fatalf("gathered %d series, %v; want 1", n, err)
	}
	v1 := With(reg).CounterVec("y_total", "y", "l")
	v2 := With(reg).CounterVec("y_total", "y", "l")
	if v1 != v2 {
		t.Fatal("a second vector registration returned a new vector")
	}
	// Another metric under a taken name is a programming error.
	defer func() {
		if recover() == nil {
			t.Fatal("a different metric under a taken name did not panic")
		}
	}()
	With(reg).Gauge("x_total", "other")
}

func TestNilRegisterer(t *testing.T) {
	With(nil).Counter("z_total", "z").Inc()
	if Shared(nil) != nil {
		t.Fatal("Shared(nil) is not nil")
	}
}

func TestShared(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "k_total", Help: "k"}
	first, second := Shared(reg), Shared(reg)
	a, b := prometheus.NewCounter(opts), prometheus.NewCounter(opts)
	first.MustRegister(a)
	second.MustRegister(b) // taken: left as it is, no panic
	a.Inc()
	if second.Unregister(b) {
		t.Fatal("the second wrapper unregistered a collector it did not register")
	}
	if n, err := testutil.GatherAndCount(reg, "k_total"); err != nil || n != 1 {
		t.Fatalf("after the second closed: %d series, %v; want the first's", n, err)
	}
	if !first.Unregister(a) {
		t.Fatal("the first wrapper could not unregister its collector")
	}
	if n, _ := testutil.GatherAndCount(reg, "k_total"); n != 0 {
		t.Fatalf("after the first closed: %d series; want none", n)
	}
}
