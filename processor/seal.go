package processor

import (
	"context"
	"slices"
	"time"
)

// sealLoop asks the sink (a sinks.Sealer) every SealInterval to seal the
// settled blocks of the partitions this processor owns: each partition is
// sealed by its owner, so sealers do not race in steady operation. A
// backlog (More) is sealed again at once. Errors are logged and counted;
// sealing is retried on the next tick and never holds up consuming, since
// readers count unsealed blocks from the journal.
func (p *Processor) sealLoop(ctx context.Context) {
	if p.sealer == nil || p.cfg.SealInterval < 0 {
		return
	}
	t := time.NewTicker(p.cfg.SealInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			parts := p.ownedPartitions()
			if len(parts) == 0 {
				break
			}
			res, err := p.sealer.Seal(ctx, p.cfg.Topic, parts)
			if err != nil {
				if ctx.Err() == nil {
					p.m.sealErrors.Inc()
					p.log.Warn("sealing failed; retried on the next tick", "err", err)
				}
				break
			}
			p.m.sealedBlocks.Add(float64(res.Blocks))
			if !res.More {
				break
			}
		}
	}
}

// ownedPartitions returns the partitions with a worker, in order.
func (p *Processor) ownedPartitions() []int32 {
	p.mu.Lock()
	out := make([]int32, 0, len(p.parts))
	for id := range p.parts {
		out = append(out, id)
	}
	p.mu.Unlock()
	slices.Sort(out)
	return out
}
