package processor

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/memsink"
)

// sealingSink is a memsink that records Seal calls; the first one fails.
type sealingSink struct {
	*memsink.Sink
	mu    sync.Mutex
	calls []sealCall
}

type sealCall struct {
	at    time.Time
	parts []int32
}

func (s *sealingSink) Seal(_ context.Context, topic string, parts []int32) (sinks.SealResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, sealCall{time.Now(), slices.Clone(parts)})
	if len(s.calls) == 1 {
		return sinks.SealResult{}, errors.New("server busy")
	}
	// The second call reports a backlog: the next comes at once.
	return sinks.SealResult{Blocks: 1, More: len(s.calls) == 2}, nil
}

func TestSealLoopSealsOwnedPartitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, _ := virtualTopicN(t, "seal", 3, 300, 7)
		cfg.SealInterval = time.Minute
		s := &sealingSink{Sink: memsink.New()}
		p2, err := New(cfg, s, testLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p2.Run(ctx) }()
		time.Sleep(3*time.Minute + time.Second) // virtual time: three ticks
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		// Tick 1 fails (retried at tick 2), tick 2 reports a backlog and is
		// followed at once by a third call, tick 3 seals again.
		if len(s.calls) != 4 {
			t.Fatalf("%d seal calls in three intervals; want 4: %v", len(s.calls), s.calls)
		}
		for i, c := range s.calls {
			if !slices.Equal(c.parts, []int32{0, 1, 2}) {
				t.Fatalf("call %d sealed partitions %v; want the owned [0 1 2]", i, c.parts)
			}
		}
		if s.calls[2].at != s.calls[1].at {
			t.Fatalf("a backlog was sealed at %s after the call that reported it; want at once", s.calls[2].at.Sub(s.calls[1].at))
		}
		if got := testutil.ToFloat64(p2.m.sealErrors); got != 1 {
			t.Fatalf("seal errors = %v; want 1", got)
		}
	})
}
