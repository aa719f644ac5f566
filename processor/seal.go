package processor

import (
	"context"
	"slices"
	"strings"
	"time"
)

// sealLoop asks the sink every SealInterval to seal the
// settled blocks of the partitions this processor owns: each partition is
// sealed by its owner, so sealers do not race in steady operation. A
// backlog (More) is sealed again at once. Errors are logged and counted;
// sealing is retried on the next tick and never holds up consuming, since
// readers count unsealed blocks from the journal.
func (p *Processor) sealLoop(ctx context.Context) {
	if p.cfg.SealInterval >= 0 {
		tick(ctx, p.cfg.SealInterval, func() { p.sealOwned(ctx) })
	}
}

// sealOwned is one tick of sealLoop: it seals until no backlog is left or
// a seal fails.
func (p *Processor) sealOwned(ctx context.Context) {
	for ctx.Err() == nil {
		logs := p.ownedLogs()
		if len(logs) == 0 {
			return
		}
		more := false
		for _, l := range logs {
			res, err := p.sink.Seal(ctx, l.name, l.parts)
			if err != nil {
				if ctx.Err() == nil {
					p.m.sealErrors.Inc()
					p.log.Warn("sealing failed; retried on the next tick", "log", l.name, "err", err)
				}
				return
			}
			p.m.sealedBlocks.Add(float64(res.Blocks))
			more = more || res.More
		}
		if !more {
			return
		}
	}
}

// tick calls f every interval until ctx ends.
func tick(ctx context.Context, every time.Duration, f func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// ownedLog is a log name and the owned partitions stored under it.
type ownedLog struct {
	name  string
	parts []int32
}

// ownedLogs returns the partitions with a worker, in order, by log name
// (the topic, or topic~N for partitions restarted under a new identity).
func (p *Processor) ownedLogs() []ownedLog {
	p.mu.Lock()
	by := make(map[string][]int32)
	for id, w := range p.parts {
		by[w.log] = append(by[w.log], id)
	}
	p.mu.Unlock()
	out := make([]ownedLog, 0, len(by))
	for name, parts := range by {
		slices.Sort(parts)
		out = append(out, ownedLog{name, parts})
	}
	slices.SortFunc(out, func(a, b ownedLog) int { return strings.Compare(a.name, b.name) })
	return out
}
