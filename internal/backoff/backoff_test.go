package backoff

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestRetryWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := Backoff{Min: 100 * time.Millisecond, Max: 300 * time.Millisecond}
		var at []time.Duration
		var failed []int
		start := time.Now()
		err := b.Retry(context.Background(), func(context.Context) error {
			at = append(at, time.Since(start))
			if len(at) < 5 {
				return errors.New("not yet")
			}
			return nil
		}, func(n int, err error) { failed = append(failed, n) })
		if err != nil {
			t.Fatal(err)
		}
		want := []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond, 900 * time.Millisecond}
		for i := range want {
			if at[i] != want[i] {
				t.Fatalf("attempts at %v; want %v", at, want)
			}
		}
		if len(failed) != 4 || failed[0] != 1 || failed[3] != 4 {
			t.Fatalf("onFail called with %v; want 1..4", failed)
		}
	})
}

func TestRetryStopAndAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := Backoff{Min: time.Millisecond, Max: time.Second}
		final := errors.New("bad config")
		n := 0
		start := time.Now()
		err := b.Retry(context.Background(), func(context.Context) error {
			n++
			if n == 1 {
				return After(errors.New("busy"), 5*time.Second)
			}
			return Stop(final)
		}, nil)
		if err != final || n != 2 {
			t.Fatalf("Retry = %v after %d attempts; want the final error after 2", err, n)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Fatalf("waited %v; want the 5s asked for", d)
		}
	})
}

func TestRetryContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := Backoff{Min: 400 * time.Millisecond, Max: time.Hour}.Retry(ctx, func(context.Context) error {
			return errors.New("down")
		}, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Retry = %v; want the context's error", err)
		}
	})
}
