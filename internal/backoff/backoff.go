// Package backoff is taillight's one retry loop: attempts with a capped
// exponential wait between them, until one succeeds, one fails for good
// or the context ends.
package backoff

import (
	"context"
	"errors"
	"time"
)

// Backoff is the wait between attempts: Min after the first failure,
// doubling after each further one, never more than Max.
type Backoff struct {
	Min, Max time.Duration
}

// Retry calls op until it returns nil or an error made by Stop, or ctx
// ends. After each failure it calls onFail (when not nil) with the
// attempt's number, counted from 1, and the error, then waits. It returns
// nil; the error given to Stop; op's error when ctx had ended by the time
// op returned; or ctx.Err() when ctx ended during a wait.
func (b Backoff) Retry(ctx context.Context, op func(context.Context) error, onFail func(attempt int, err error)) error {
	wait := b.Min
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		var s *stopError
		if errors.As(err, &s) {
			return s.err
		}
		if ctx.Err() != nil {
			return err
		}
		if onFail != nil {
			onFail(attempt, err)
		}
		d := wait
		var w *waitError
		if errors.As(err, &w) {
			d = max(d, w.at)
		}
		if err := Sleep(ctx, d); err != nil {
			return err
		}
		wait = min(2*wait, b.Max)
	}
}

// Stop marks err as final: Retry returns err at once, without waiting.
func Stop(err error) error { return &stopError{err} }

// After asks Retry to wait at least d before the next attempt (a server's
// Retry-After), instead of less.
func After(err error, d time.Duration) error { return &waitError{err, d} }

type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }
func (e *stopError) Unwrap() error { return e.err }

type waitError struct {
	err error
	at  time.Duration
}

func (e *waitError) Error() string { return e.err.Error() }
func (e *waitError) Unwrap() error { return e.err }

// Sleep waits for d or until ctx ends, whichever is first; it returns
// ctx.Err() in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
