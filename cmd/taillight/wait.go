package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/taillight/taillight/internal/backoff"
)

// dependency is a server a long-running command needs (ClickHouse, Kafka).
// Commands start while it does not answer and wait for it, reporting the
// reason on /readyz and logging once per change of state, so an
// orchestrator sees a pod that is not ready instead of a crash loop.
type dependency struct {
	name string
	log  *slog.Logger
	mu   sync.Mutex
	err  error // why it is not usable, or nil
}

func newDependency(name string, log *slog.Logger) *dependency {
	return &dependency{name: name, log: log, err: fmt.Errorf("connecting to %s", name)}
}

// Ready returns nil once the dependency answered.
func (d *dependency) Ready() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

func (d *dependency) set(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
}

// connect calls open until it succeeds, fails with an error transient does
// not accept (bad configuration: returned at once), or ctx ends. The wait
// between attempts doubles from 100 ms up to maxBackoff.
func connect[T any](ctx context.Context, d *dependency, maxBackoff time.Duration, transient func(error) bool, open func(context.Context) (T, error)) (T, error) {
	var v T
	start, attempts := time.Now(), 0
	err := backoff.Backoff{Min: 100 * time.Millisecond, Max: maxBackoff}.Retry(ctx, func(ctx context.Context) error {
		attempts++
		var err error
		if v, err = open(ctx); err != nil && !transient(err) {
			return backoff.Stop(err)
		}
		return err
	}, func(attempt int, err error) {
		d.set(fmt.Errorf("%s unreachable (retrying): %w", d.name, err))
		if attempt == 1 {
			d.log.Warn(d.name+" does not answer; waiting for it (not ready meanwhile)", "err", err)
		}
	})
	if err != nil {
		return v, err
	}
	d.set(nil)
	if attempts > 1 {
		d.log.Info(d.name+" answers; starting", "attempts", attempts, "waited", time.Since(start).Round(time.Millisecond))
	}
	return v, nil
}
