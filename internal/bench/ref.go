package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/kafkaclient"
	"github.com/taillight/taillight/schemas"
)

// RefConfig configures the decode-only reference consumer.
type RefConfig struct {
	Brokers []string
	Topic   string
	// N is the number of records to read; the consumer stops after them.
	N int
}

// RefResult is what the reference consumer read.
type RefResult struct {
	Records int64   `json:"records"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

// RunReference is the yardstick of the end-to-end figures: the least work a
// Kafka → TraceItem consumer can do. It reads every partition of cfg.Topic
// from the earliest offset with franz-go (no group, nothing committed),
// decodes each value into a schemas.TraceItem with segmentio/encoding (one
// decoder goroutine per CPU, as the processor decodes partitions in
// parallel) and discards it, until cfg.N records were read.
func RunReference(ctx context.Context, cfg RefConfig) (RefResult, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" || cfg.N <= 0 {
		return RefResult{}, errors.New("reference consumer: brokers, topic and a positive count are required")
	}
	start := time.Now()
	kc := kafkaclient.Config{Brokers: cfg.Brokers, FetchMaxBytes: 64 << 20}
	cl, err := kc.NewClient(nil, nil, "",
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return RefResult{}, fmt.Errorf("reference consumer: %w", err)
	}
	defer cl.Close()

	workers := runtime.GOMAXPROCS(0)
	var res RefResult
	var firstErr error
	for res.Records < int64(cfg.N) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("reference consumer after %d records: %w", res.Records, err)
		}
		if err := fs.Err0(); err != nil {
			return res, fmt.Errorf("reference consumer: fetch: %w", err)
		}
		recs := fs.Records()
		var wg sync.WaitGroup
		var mu sync.Mutex
		chunk := (len(recs) + workers - 1) / workers
		for lo := 0; lo < len(recs); lo += chunk {
			part := recs[lo:min(lo+chunk, len(recs))]
			wg.Add(1)
			go func() {
				defer wg.Done()
				var it schemas.TraceItem
				for _, r := range part {
					it = schemas.TraceItem{}
					if err := json.Unmarshal(r.Value, &it); err != nil {
						mu.Lock()
						firstErr = cmpErr(firstErr, fmt.Errorf("decode offset %d of partition %d: %w", r.Offset, r.Partition, err))
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return res, fmt.Errorf("reference consumer: %w", firstErr)
		}
		for _, r := range recs {
			res.Bytes += int64(len(r.Value))
		}
		res.Records += int64(len(recs))
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
