// Package promreg registers Prometheus collectors so that registering the
// same metrics twice on one registry never panics: two Publishers,
// Processors or Writers in one process (tests, taillight dev) share the
// series of the first, as chsink always did.
package promreg

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns it, or returns the collector
// already registered under the same descriptors. reg may be nil (c is then
// returned unregistered). Any other error (a metric of the same name with
// other labels or help) is a programming error and panics, as promauto
// does.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// Factory creates metrics registered with Register: promauto.With(reg)
// without the panic on a second registration. Its zero value (or With(nil))
// registers nothing.
type Factory struct{ reg prometheus.Registerer }

// With returns a Factory registering on reg.
func With(reg prometheus.Registerer) Factory { return Factory{reg} }

// Counter registers a counter.
func (f Factory) Counter(name, help string) prometheus.Counter {
	return Register(f.reg, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

// CounterVec registers a counter vector.
func (f Factory) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return Register(f.reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

// Gauge registers a gauge.
func (f Factory) Gauge(name, help string) prometheus.Gauge {
	return Register(f.reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}

// GaugeVec registers a gauge vector.
func (f Factory) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return Register(f.reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels))
}

// GaugeFunc registers a gauge whose value is read from fn at scrape.
// On a second registration the first function stays.
func (f Factory) GaugeFunc(name, help string, fn func() float64) prometheus.GaugeFunc {
	return Register(f.reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// Histogram registers a histogram with the given bucket bounds.
func (f Factory) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return Register(f.reg, prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}))
}

// HistogramVec registers a histogram vector with the given bucket bounds.
func (f Factory) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return Register(f.reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels))
}

// NewCounter registers a counter from its options.
func (f Factory) NewCounter(o prometheus.CounterOpts) prometheus.Counter {
	return Register(f.reg, prometheus.NewCounter(o))
}

// NewCounterVec registers a counter vector from its options.
func (f Factory) NewCounterVec(o prometheus.CounterOpts, labels []string) *prometheus.CounterVec {
	return Register(f.reg, prometheus.NewCounterVec(o, labels))
}

// NewHistogramVec registers a histogram vector from its options.
func (f Factory) NewHistogramVec(o prometheus.HistogramOpts, labels []string) *prometheus.HistogramVec {
	return Register(f.reg, prometheus.NewHistogramVec(o, labels))
}

// Shared wraps reg for one client of a library that registers its own
// collectors with MustRegister and unregisters them when the client closes
// (kprom, the franz-go client metrics): a collector already registered is
// left as it is instead of panicking, so a second client on one registry
// runs, its series not exported while the first client's are; and only
// the collectors this wrapper registered are unregistered, so the second
// client closing leaves the first's series. Shared(nil) is nil.
func Shared(reg prometheus.Registerer) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return &shared{reg: reg, mine: map[prometheus.Collector]bool{}}
}

type shared struct {
	reg  prometheus.Registerer
	mu   sync.Mutex
	mine map[prometheus.Collector]bool
}

func (s *shared) Register(c prometheus.Collector) error {
	err := s.reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		return nil
	}
	if err == nil {
		s.mu.Lock()
		s.mine[c] = true
		s.mu.Unlock()
	}
	return err
}

func (s *shared) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := s.Register(c); err != nil {
			panic(err)
		}
	}
}

func (s *shared) Unregister(c prometheus.Collector) bool {
	s.mu.Lock()
	mine := s.mine[c]
	delete(s.mine, c)
	s.mu.Unlock()
	return mine && s.reg.Unregister(c)
}
