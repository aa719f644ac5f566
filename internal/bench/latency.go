package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/producer"
)

// sent is one record of the latency phase: where it landed and when it was
// handed to the Kafka client.
type sent struct {
	offset int64
	at     time.Time
}

// sighting is one poll's answer for a partition: every offset up to max was
// queryable when the poll returned at `at`.
type sighting struct {
	max int64
	at  time.Time
}

// measureLatency offers rate events/s for dur, each stamped with the time it
// is produced, and finds when each becomes queryable. ClickHouse is polled
// every pollEvery for the highest kafka_offset per partition in trace_items:
// the processor writes a partition's blocks in offset order, so that offset
// and all below it are queryable. A record's latency is the end of the first
// poll that saw it minus its produce time: an upper bound, at most one poll
// interval plus one query late (the resolution in the report).
func measureLatency(ctx context.Context, pub *producer.Publisher, q driver.Conn, db, topic string,
	partitions int, seed uint64, rate float64, dur time.Duration, p *proc, chPID int) (*Latency, error) {
	n := int(rate * dur.Seconds())
	if n <= 0 {
		return nil, fmt.Errorf("bench: latency phase of %s at %.1f events/s has no events", dur, rate)
	}
	// Each poll reads only past what the previous one saw, per partition:
	// the sorting key (topic, partition, offset) then reads a few granules
	// instead of the whole table 20 times a second, which would load the
	// server being measured.
	from := make(map[int32]int64, partitions)
	for p := range partitions {
		from[int32(p)] = 0
	}
	base, err := visibleOffsets(ctx, q, db, from)
	if err != nil {
		return nil, fmt.Errorf("bench: latency phase: %w", err)
	}
	for p, o := range base {
		from[p] = o
	}

	var (
		mu      sync.Mutex
		records = map[int32][]sent{}
		acked   int
		first   error
	)
	// The payloads are generated before the clock starts, and records are
	// handed to the client in 5 ms batches rather than one timer per record:
	// the load generator should not compete with what it measures.
	gen, err := producer.NewGenerator(producer.GenConfig{Seed: seed, Start: time.Now(),
		Step: max(time.Duration(float64(time.Second)/rate), time.Nanosecond)})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	values := make([][]byte, n)
	keys := make([][]byte, n)
	for i := range n {
		b, tr := gen.Next(nil)
		values[i], keys[i] = b, []byte(tr.Script)
	}
	cl := pub.Client()
	cpu0, err := ProcCPU(p.pid())
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	chCPU0, work0 := time.Duration(0), Work{}
	if chPID != 0 {
		if chCPU0, err = ProcCPU(chPID); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	if work0, err = serverWork(ctx, q); err != nil {
		return nil, err
	}
	prodDone := make(chan time.Time, 1)
	pctx, cancelProd := context.WithCancel(ctx)
	defer cancelProd()
	t0 := time.Now()
	go func() {
		defer close(prodDone)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		next := 0
		for next < n {
			due := min(n, int(time.Since(t0).Seconds()*rate)+1)
			for ; next < due; next++ {
				r := &kgo.Record{Topic: topic, Key: keys[next], Value: values[next], Timestamp: time.Now()}
				values[next], keys[next] = nil, nil
				cl.Produce(pctx, r, func(r *kgo.Record, err error) {
					mu.Lock()
					defer mu.Unlock()
					acked++
					if err != nil {
						first = cmpErr(first, err)
						return
					}
					records[r.Partition] = append(records[r.Partition], sent{r.Offset, r.Timestamp})
				})
			}
			select {
			case <-pctx.Done():
				return
			case <-tick.C:
			}
		}
		prodDone <- time.Now()
	}()

	var lastProduced time.Time
	lastStored, lastRead := int64(-1), time.Time{}
	sightings := map[int32][]sighting{}
	complete := func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if first != nil {
			return false, first
		}
		if acked < n {
			return false, nil
		}
		for part, rs := range records {
			ss := sightings[part]
			if len(ss) == 0 || ss[len(ss)-1].max < rs[len(rs)-1].offset {
				return false, nil
			}
		}
		return true, nil
	}
	err = poll(ctx, p, pollEvery, "the latency phase's rows", func() (bool, error) {
		select {
		case t, ok := <-prodDone:
			if ok {
				lastProduced = t
			}
		default:
		}
		// Offsets are read when trace_items changed (and every second
		// anyway): the parts list is metadata, while the offsets query reads a granule of every
		// active part per partition (8,192 rows each), which at 20 polls
		// a second loaded the server being measured.
		stored, err := storedRows(ctx, q, db)
		if err != nil {
			return false, err
		}
		if stored == lastStored && time.Since(lastRead) < time.Second {
			return complete()
		}
		vis, err := visibleOffsets(ctx, q, db, from)
		at := time.Now()
		if err != nil {
			return false, err
		}
		lastStored, lastRead = stored, at
		for part, m := range vis {
			ss := sightings[part]
			if len(ss) == 0 || ss[len(ss)-1].max < m {
				sightings[part] = append(ss, sighting{m, at})
			}
			from[part] = m
		}
		return complete()
	})
	if err != nil {
		mu.Lock()
		defer mu.Unlock()
		if first != nil {
			return nil, fmt.Errorf("bench: latency phase: produce: %w", first)
		}
		return nil, err
	}
	if lastProduced.IsZero() {
		lastProduced = <-prodDone
	}
	cpu, err := ProcCPU(p.pid())
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	chCPU := time.Duration(-1e6 * float64(n)) // reported as -1 CPU-s per million
	if chPID != 0 {
		if chCPU, err = ProcCPU(chPID); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		chCPU -= chCPU0
	}
	work, err := serverWork(ctx, q)
	if err != nil {
		return nil, err
	}

	mu.Lock()
	defer mu.Unlock()
	lats := make([]time.Duration, 0, n)
	for part, rs := range records {
		ss := sightings[part]
		for _, r := range rs {
			i := sort.Search(len(ss), func(i int) bool { return ss[i].max >= r.offset })
			lats = append(lats, ss[i].at.Sub(r.at))
		}
	}
	l := latencyOf(lats, rate, float64(n)/lastProduced.Sub(t0).Seconds())
	l.ProcessorCPUSecPerMillion = (cpu - cpu0).Seconds() * 1e6 / float64(n)
	l.ClickHouseCPUSecPerMillion = chCPU.Seconds() * 1e6 / float64(n)
	l.ClickHouseWork = work.sub(work0)
	return l, nil
}

func latencyOf(lats []time.Duration, offered, achieved float64) *Latency {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return &Latency{
		OfferedRate:  offered,
		AchievedRate: achieved,
		Events:       len(lats),
		P50Ms:        ms(Percentile(lats, 50)),
		P99Ms:        ms(Percentile(lats, 99)),
		MaxMs:        ms(Percentile(lats, 100)),
		ResolutionMs: ms(pollEvery),
	}
}

// storedRows returns the rows of trace_items's active parts, from the
// server's parts list: it changes when an INSERT lands (or a merge
// collapses replayed rows).
func storedRows(ctx context.Context, q driver.Conn, db string) (int64, error) {
	var n uint64
	if err := q.QueryRow(ctx, "SELECT sum(rows) FROM system.parts WHERE database = ? AND table = 'trace_items' AND active", db).Scan(&n); err != nil {
		return 0, fmt.Errorf("query the parts of trace_items: %w", err)
	}
	return int64(n), nil
}

// visibleOffsets returns the highest queryable kafka_offset of the
// partitions in from, looking in each only at offsets ≥ its from (the
// sorting key makes that cheap). The database is the run's own, so its
// only topic is the bench's: kafka_topic is left out of the condition,
// or the server would read and compare that string column for every row
// of the granules it reads, 20 times a second.
func visibleOffsets(ctx context.Context, q driver.Conn, db string, from map[int32]int64) (map[int32]int64, error) {
	var ranges []string
	for p, o := range from {
		ranges = append(ranges, fmt.Sprintf("(kafka_partition = %d AND kafka_offset >= %d)", p, max(o, 0)))
	}
	sort.Strings(ranges)
	rows, err := q.Query(ctx, fmt.Sprintf(
		"SELECT kafka_partition, max(kafka_offset) FROM %s.trace_items WHERE %s GROUP BY kafka_partition",
		db, strings.Join(ranges, " OR ")))
	if err != nil {
		return nil, fmt.Errorf("query queryable offsets: %w", err)
	}
	defer rows.Close()
	out := map[int32]int64{}
	for rows.Next() {
		var part int32
		var m uint64
		if err := rows.Scan(&part, &m); err != nil {
			return nil, fmt.Errorf("query queryable offsets: %w", err)
		}
		out[part] = int64(m)
	}
	return out, rows.Err()
}
