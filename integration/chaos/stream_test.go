package chaos

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/integration"
	"github.com/taillight/taillight/processor"
	"github.com/taillight/taillight/processor/proctest"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/chsink"
	"github.com/taillight/taillight/sinks/memsink"
)

// Full reports whether TAILLIGHT_CHAOS=full asks for the big versions.
func full() bool { return os.Getenv("TAILLIGHT_CHAOS") == "full" }

// size returns fast or, in full mode, big.
func size[T any](fast, big T) T {
	if full() {
		return big
	}
	return fast
}

// Planted secrets: proctest's authorization header value, and the ones the
// hostile records below carry.
var secrets = []string{"s3cr3t", "chaos-poison-token-9f8e7d", "4111111111111111", "deadbeefcafef00d1234567890abcdef"}

// skew is the clock skew between scripts planted in every stream: api's
// clock runs 7 minutes behind, web's 5 minutes ahead.
var skew = map[string]time.Duration{"api": -7 * time.Minute, "web": 5 * time.Minute}

// stream is one scenario's topic, database and ground truth: every record
// produced, acknowledged at the (partition, offset) the truth expects.
type stream struct {
	t         testing.TB
	brokers   []string
	topic     string
	db        string
	conn      driver.Conn
	ch        chsink.Config
	g         *proctest.Truth
	ids       map[[2]int64]int // planted event id of each valid fetch record
	nextID    int
	hostile   int // poison records with secrets planted
	oversized int // oversized records planted
	cl        *kgo.Client
	// routesChanged: processors ran with other -route.patterns than the
	// generator assumes, so endpoint rows are compared with the ground
	// truth without their route (and exactly with trace_items FINAL).
	routesChanged bool
	fleets        []*fleet // every fleet started on the stream, for stuck()
}

// newStream creates a topic of partitions partitions on brokers (replication
// rf, values up to 2 MiB so oversized items reach the processor), its DLQ
// topic, and a migrated database on env's ClickHouse.
func newStream(t testing.TB, env *integration.Env, brokers []string, partitions int32, rf int16) *stream {
	t.Helper()
	s := &stream{t: t, brokers: brokers, topic: integration.TopicName(t), db: env.Database(t), conn: env.ClickHouseConn(t),
		g: proctest.New(partitions), ids: map[[2]int64]int{}}
	s.g.Skew = skew
	s.ch = chsink.DefaultConfig()
	s.ch.Addrs = []string{env.ClickHouseAddr}
	s.ch.Database = s.db
	s.ch.User, s.ch.Password = env.ClickHouseUser, env.ClickHousePassword
	adm := kadm.NewClient(integration.NewKafkaClient(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	big := "2097152"
	for _, tc := range []struct {
		name  string
		parts int32
	}{{s.topic, partitions}, {s.topic + schemas.DLQSuffix, 1}} {
		resp, err := adm.CreateTopic(ctx, tc.parts, rf, map[string]*string{"max.message.bytes": &big}, tc.name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("create topic %s: %v", tc.name, err)
		}
	}
	w, err := chsink.New(ctx, s.ch, nil, nil)
	if err != nil {
		t.Fatalf("chsink: %v", err)
	}
	defer w.Close()
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	s.cl = integration.NewKafkaClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(4<<20), kgo.RequiredAcks(kgo.AllISRAcks()))
	return s
}

// processArgs are the flags of a `taillight process` for this stream.
func (s *stream) processArgs(group string) []string {
	return []string{"process",
		"-kafka.brokers", strings.Join(s.brokers, ","), "-kafka.topic", s.topic, "-kafka.group", group,
		"-clickhouse.addr", s.ch.Addrs[0], "-clickhouse.database", s.db,
		"-clickhouse.user", s.ch.User, "-clickhouse.password", s.ch.Password,
		"-flush.max-rows", strconv.Itoa(size(300, 5000)), "-flush.linger", "100ms", "-kafka.session-timeout", "6s",
		"-listen.metrics", "127.0.0.1:0", "-log.level", "info",
		// proctest's events have fixed dates: no retention, whatever today is.
		"-retention.raw", "0", "-retention.rollups", "0"}
}

// produce generates n more items (every 97th poison; every hostileEvery-th
// followed by a poison record carrying secrets, and every tenth of those by
// an oversized one too), plants an event id in each fetch item's URL, and produces them in
// order, checking each is acknowledged at the offset the truth expects.
// Only the truth is kept: the record bytes are dropped once acknowledged.
func (s *stream) produce(seed uint64, n, hostileEvery int) {
	t := s.t
	t.Helper()
	const chunk = 20000
	rng := rand.New(rand.NewPCG(seed, seed^0xc4a05))
	for done := 0; done < n; done += chunk {
		k := min(chunk, n-done)
		next := append([]int64(nil), s.g.Offsets...)
		s.g.Records = s.g.Records[:0]
		s.g.Generate(t, rng, k, 97)
		gen := len(s.g.Records)
		for i := 0; i < gen; i++ {
			r := &s.g.Records[i]
			key := [2]int64{int64(r.Partition), next[r.Partition]}
			next[r.Partition]++
			if s.g.Valid[key] && bytes.Contains(r.Value, []byte(`?q=1"`)) {
				s.nextID++
				s.ids[key] = s.nextID
				r.Value = bytes.Replace(r.Value, []byte(`?q=1"`), []byte(`?q=1&eid=`+strconv.Itoa(s.nextID)+`"`), 1)
			}
			if hostileEvery > 0 && i%hostileEvery == hostileEvery-1 {
				part, ts := r.Partition, r.Timestamp
				s.g.Add(proctest.Record{Partition: part, Value: []byte(hostileJSON), Timestamp: ts}, false)
				s.hostile++
				if s.hostile%10 == 1 {
					s.g.Add(proctest.Record{Partition: part, Value: oversized(), Timestamp: ts}, false)
					s.oversized++
				}
			}
		}
		s.send()
	}
	s.g.Records = nil
}

// hostileJSON is a truncated item (bad_json) full of secrets in the places
// the redaction policy covers for valid items.
const hostileJSON = `{"outcome":"ok","scriptName":"api","event":{"request":{"url":"https://api.example.com/users/deadbeefcafef00d1234567890abcdef/pay?card=4111111111111111&q=1","method":"GET","headers":[{"name":"authorization","value":"Bearer chaos-poison-token-9f8e7d"},{"name":"cookie","value":"sid=chaos-poison-token-9f8e7d"}]}},"logs":[`

// oversized returns a syntactically valid item larger than
// schemas.MaxItemBytes (reason oversize).
func oversized() []byte {
	return []byte(`{"outcome":"ok","scriptName":"api","logs":[{"level":"log","message":["` + strings.Repeat("x", schemas.MaxItemBytes) + `"],"timestamp":1}]}`)
}

// send produces the current chunk of records in the order the truth
// assigned their offsets (s.g.Records' order: the generated records, then
// the hostile ones added after them).
func (s *stream) send() {
	t := s.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	want := make([]int64, len(s.g.Offsets))
	for _, r := range s.g.Records {
		want[r.Partition]++
	}
	base := make([]int64, len(s.g.Offsets))
	for p := range base {
		base[p] = s.g.Offsets[p] - want[p]
	}
	recs := make([]*kgo.Record, 0, len(s.g.Records))
	expect := make(map[*kgo.Record]int64, len(s.g.Records))
	for _, r := range s.g.Records {
		kr := &kgo.Record{Topic: s.topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
		recs = append(recs, kr)
		expect[kr] = base[r.Partition]
		base[r.Partition]++
	}
	res := s.cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	// Results come in completion order: match them by record.
	for _, r := range res {
		if want, ok := expect[r.Record]; !ok || r.Record.Offset != want {
			t.Fatalf("record acknowledged at partition %d offset %d; the truth expects %d", r.Record.Partition, r.Record.Offset, want)
		}
	}
}

// total is the number of records produced.
func (s *stream) total() int64 {
	var n int64
	for _, o := range s.g.Offsets {
		n += o
	}
	return n
}

func (s *stream) query(q string, dest ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.conn.QueryRow(ctx, q).Scan(dest...)
}

// progress returns the raw rows written so far (before deduplication), or
// an error while ClickHouse is away.
func (s *stream) progress() (uint64, error) {
	var n uint64
	err := s.query(fmt.Sprintf("SELECT count() FROM %s.trace_items", s.db), &n)
	return n, err
}

// waitRows polls until at least n raw rows are written; it returns how long
// that took.
func (s *stream) waitRows(n uint64, timeout time.Duration) time.Duration {
	s.t.Helper()
	t0 := time.Now()
	for {
		if got, err := s.progress(); err == nil && got >= n {
			return time.Since(t0)
		}
		if time.Since(t0) > timeout {
			got, err := s.progress()
			s.t.Fatalf("after %s: %d raw rows (%v); want %d", timeout, got, err, n)
		}
		<-time.After(50 * time.Millisecond)
	}
}

// waitDrained polls until trace_items FINAL holds every valid record and
// the script view counts them all; it returns how long that took.
func (s *stream) waitDrained(timeout time.Duration) time.Duration {
	s.t.Helper()
	t0 := time.Now()
	want := uint64(len(s.g.Valid))
	for {
		var n, counted uint64
		err := s.query(fmt.Sprintf("SELECT count() FROM %s.trace_items FINAL", s.db), &n)
		if err == nil {
			err = s.query(fmt.Sprintf("SELECT toUInt64(sum(requests)) FROM %s.script_outcomes_1m", s.db), &counted)
		}
		if err == nil && n == want && counted >= want {
			return time.Since(t0)
		}
		for _, f := range s.fleets {
			f.crashed()
		}
		if time.Since(t0) > timeout {
			s.stuck()
			s.t.Fatalf("after %s: %d distinct raw rows, %d counted requests (%v); want %d", timeout, n, counted, err, want)
		}
		<-time.After(200 * time.Millisecond)
	}
}

// stuck logs, for a drain that timed out, each partition's rows against
// the topic's end offsets and the end of every processor's log.
func (s *stream) stuck() {
	t := s.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(integration.NewKafkaClient(t, s.brokers))
	ends, err := adm.ListEndOffsets(ctx, s.topic)
	if err != nil {
		t.Logf("stuck: end offsets: %v", err)
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf(
		"SELECT kafka_partition, count(), max(kafka_offset) FROM %s.trace_items FINAL GROUP BY kafka_partition ORDER BY kafka_partition", s.db))
	if err != nil {
		t.Logf("stuck: rows per partition: %v", err)
	} else {
		for rows.Next() {
			var p int32
			var n, last uint64
			if err := rows.Scan(&p, &n, &last); err != nil {
				t.Logf("stuck: %v", err)
				break
			}
			end, _ := ends.Lookup(s.topic, p)
			t.Logf("stuck: partition %d: %d rows, last offset %d; topic end offset %d", p, n, last, end.Offset)
		}
		rows.Close()
	}
	for _, f := range s.fleets {
		for i, p := range f.all() {
			state := "running"
			if p.exited() {
				state = fmt.Sprintf("exited (%v)", p.err)
			}
			t.Logf("stuck: processor %d of group %s, %s, log tail:\n%s", i, f.group, state, tail(p.stderr.String()))
		}
	}
}

// result is what check measured, for the README's reliability table.
type result struct {
	Events, Valid, Poison       int64
	RawRows                     uint64 // before FINAL: duplicates the ReplacingMergeTree absorbs
	Dups, IDDups, Lost, Foreign int
	DLQRecords, DLQDistinct     int
}

func (r result) String() string {
	return fmt.Sprintf("events=%d valid=%d poison=%d raw_rows=%d dup_offsets=%d dup_ids=%d lost=%d unexpected=%d dlq_records=%d dlq_distinct=%d",
		r.Events, r.Valid, r.Poison, r.RawRows, r.Dups, r.IDDups, r.Lost, r.Foreign, r.DLQRecords, r.DLQDistinct)
}

// check asserts the invariant of every scenario once the stream drained:
// trace_items FINAL holds each valid record once (by Kafka coordinates and
// by planted event id), the DLQ holds each poison record (distinct source
// coordinates), nothing else is anywhere; the views equal the ground truth
// and the counts computed from trace_items FINAL; no planted
// secret is in ClickHouse or the DLQ. logs and metrics are the processors'
// captured stderr and /metrics scrapes, searched for the secrets too.
func (s *stream) check(logs, metrics string) result {
	t := s.t
	t.Helper()
	res := result{Events: s.total(), Valid: int64(len(s.g.Valid))}
	res.Poison = res.Events - res.Valid
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := s.query(fmt.Sprintf("SELECT count() FROM %s.trace_items", s.db), &res.RawRows); err != nil {
		t.Fatal(err)
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf(
		"SELECT kafka_partition, kafka_offset, toUInt64OrZero(extract(url, 'eid=([0-9]+)')) FROM %s.trace_items FINAL WHERE kafka_topic = '%s'", s.db, s.topic))
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[[2]int64]bool, len(s.g.Valid))
	seenID := make(map[uint64]bool, len(s.ids))
	for rows.Next() {
		var p int32
		var o, id uint64
		if err := rows.Scan(&p, &o, &id); err != nil {
			t.Fatal(err)
		}
		k := [2]int64{int64(p), int64(o)}
		if seen[k] {
			if res.Dups++; res.Dups <= 5 {
				t.Errorf("partition %d offset %d appears twice in trace_items FINAL", p, o)
			}
		}
		seen[k] = true
		if !s.g.Valid[k] {
			if res.Foreign++; res.Foreign <= 5 {
				t.Errorf("unexpected row partition %d offset %d", p, o)
			}
		}
		if want := s.ids[k]; uint64(want) != id {
			t.Errorf("partition %d offset %d has event id %d; planted %d", p, o, id, want)
		}
		if id != 0 {
			if seenID[id] {
				if res.IDDups++; res.IDDups <= 5 {
					t.Errorf("event id %d appears twice", id)
				}
			}
			seenID[id] = true
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for k := range s.g.Valid {
		if !seen[k] {
			if res.Lost++; res.Lost <= 5 {
				t.Errorf("record partition %d offset %d lost", k[0], k[1])
			}
		}
	}
	if len(seenID) != len(s.ids) {
		t.Errorf("%d planted event ids in trace_items; want %d", len(seenID), len(s.ids))
	}
	if res.Lost > 0 || res.Dups > 0 || res.Foreign > 0 {
		t.Errorf("trace_items FINAL: %d lost, %d duplicated, %d unexpected", res.Lost, res.Dups, res.Foreign)
	}

	views := integration.ReadViews(t, s.conn, s.db)
	if s.routesChanged {
		integration.DiffTotals(t, "views against the ground truth (routes aside)", withoutRoutes(views), withoutRoutes(s.g.Totals))
	} else {
		integration.DiffTotals(t, "views against the ground truth", views, s.g.Totals)
	}
	integration.DiffTotals(t, "views against trace_items FINAL", views, s.viewsFromRaw(ctx))

	res.DLQRecords, res.DLQDistinct = s.checkDLQ(ctx)
	s.checkClickHouseSecrets(ctx, secrets)
	for _, sec := range secrets {
		if strings.Contains(logs, sec) {
			t.Errorf("secret %q in the processors' logs", sec)
		}
		if strings.Contains(metrics, sec) {
			t.Errorf("secret %q in /metrics", sec)
		}
	}
	if metrics == "" {
		t.Error("no /metrics scrape to search for secrets")
	}
	return res
}

// withoutRoutes sums endpoint totals over their routes.
func withoutRoutes(in map[memsink.Key]memsink.Totals) map[memsink.Key]memsink.Totals {
	out := make(map[memsink.Key]memsink.Totals, len(in))
	for k, v := range in {
		k.Route = ""
		t := out[k]
		t.Merge(v)
		out[k] = t
	}
	return out
}

// viewsFromRaw computes the three rollup views from trace_items FINAL, with
// the rollup package's definitions (endpoint and colo: fetch events only;
// errors: outcome != ok or status >= 500; exceptions: outcome exception or
// any exception; colo "unknown" when empty).
func (s *stream) viewsFromRaw(ctx context.Context) map[memsink.Key]memsink.Totals {
	t := s.t
	t.Helper()
	out := map[memsink.Key]memsink.Totals{}
	read := func(q string, scan func(driver.Rows) (memsink.Key, memsink.Totals, error)) {
		integration.ReadTotals(t, ctx, s.conn, fmt.Sprintf(q, s.db), out, scan)
	}
	read(`SELECT toStartOfMinute(event_time) AS m, script_name, host, method, route, count(),
		countIf(outcome != 'ok' OR status >= 500), countIf(outcome = 'exception' OR length(exceptions.name) > 0),
		countIf(status >= 400 AND status < 500), countIf(status >= 500 AND status < 600)
		FROM %s.trace_items FINAL WHERE event_kind = 'fetch' GROUP BY m, script_name, host, method, route`,
		func(r driver.Rows) (memsink.Key, memsink.Totals, error) {
			var m time.Time
			k := memsink.Key{Kind: sinks.KindEndpoint}
			var v memsink.Totals
			err := r.Scan(&m, &k.ScriptName, &k.Host, &k.Method, &k.Route, &v.Requests, &v.Errors, &v.Exceptions, &v.Status4xx, &v.Status5xx)
			k.Minute = m.Unix()
			return k, v, err
		})
	read(`SELECT toStartOfMinute(event_time) AS m, if(colo = '', 'unknown', colo) AS c, script_name, outcome, count()
		FROM %s.trace_items FINAL WHERE event_kind = 'fetch' GROUP BY m, c, script_name, outcome`,
		func(r driver.Rows) (memsink.Key, memsink.Totals, error) {
			var m time.Time
			k := memsink.Key{Kind: sinks.KindColo}
			var v memsink.Totals
			err := r.Scan(&m, &k.Colo, &k.ScriptName, &k.Outcome, &v.Requests)
			k.Minute = m.Unix()
			return k, v, err
		})
	read(`SELECT toStartOfMinute(event_time) AS m, script_name, outcome, count(),
		toUInt64(sum(cpu_time_ms)), toUInt64(sum(wall_time_ms)) FROM %s.trace_items FINAL GROUP BY m, script_name, outcome`,
		func(r driver.Rows) (memsink.Key, memsink.Totals, error) {
			var m time.Time
			k := memsink.Key{Kind: sinks.KindScript}
			var v memsink.Totals
			err := r.Scan(&m, &k.ScriptName, &k.Outcome, &v.Requests, &v.CPUTimeMsSum, &v.WallTimeMsSum)
			k.Minute = m.Unix()
			return k, v, err
		})
	return out
}

// checkDLQ reads the DLQ to its end: every poison record is there (by
// source coordinates, duplicates allowed: the DLQ is written at least once),
// nothing else, and no planted secret in values or headers.
func (s *stream) checkDLQ(ctx context.Context) (records, distinct int) {
	t := s.t
	t.Helper()
	dlq := s.topic + schemas.DLQSuffix
	adm := kadm.NewClient(integration.NewKafkaClient(t, s.brokers))
	ends, err := adm.ListEndOffsets(ctx, dlq)
	if err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(ctx, dlq)
	if err != nil {
		t.Fatal(err)
	}
	// A DLQ partition that no longer starts at 0 lost records to the
	// broker (retention): say so, rather than wait for them.
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			t.Fatalf("DLQ partition %d starts at offset %d: the broker deleted its first records", o.Partition, o.Offset)
		}
	})
	var end int64
	left := map[int32]int64{} // partitions not read to their end: their end offset
	next := map[int32]int64{} // the next offset to read, by partition
	ends.Each(func(o kadm.ListedOffset) {
		end += o.Offset
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	cl := integration.NewKafkaClient(t, s.brokers, kgo.ConsumeTopics(dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[[2]int64]bool{}
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("DLQ read %d of %d records (next offset by partition %v, ends %v): %v", records, end, next, left, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Logf("DLQ fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if e, ok := left[r.Partition]; ok && r.Offset+1 >= e {
				delete(left, r.Partition)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			records++
			var p, o int64 = -1, -1
			var hdrs []byte
			for _, h := range r.Headers {
				switch h.Key {
				case processor.DLQHeaderPartition:
					p, _ = strconv.ParseInt(string(h.Value), 10, 32)
				case processor.DLQHeaderOffset:
					o, _ = strconv.ParseInt(string(h.Value), 10, 64)
				}
				hdrs = append(append(hdrs, h.Key...), h.Value...)
			}
			k := [2]int64{p, o}
			if s.g.Valid[k] || p < 0 || p >= int64(len(s.g.Offsets)) || o < 0 || o >= s.g.Offsets[p] {
				t.Errorf("DLQ record for partition %d offset %d is not a poison record", p, o)
			}
			got[k] = true
			for _, sec := range secrets {
				if bytes.Contains(r.Value, []byte(sec)) || bytes.Contains(hdrs, []byte(sec)) || bytes.Contains(r.Key, []byte(sec)) {
					t.Errorf("secret %q in the DLQ record for partition %d offset %d", sec, p, o)
				}
			}
		})
	}
	if want := int(s.total()) - len(s.g.Valid); len(got) != want {
		t.Errorf("DLQ holds %d distinct poison records; want %d", len(got), want)
	}
	return records, len(got)
}

// checkClickHouseSecrets searches every String and Array(String) column
// (Nested columns included) of every table of the database for the planted
// secrets. (formatRow would cover every type, but ClickHouse before 20.x
// lacks it; the secrets are strings.)
func (s *stream) checkClickHouseSecrets(ctx context.Context, secrets []string) {
	t := s.t
	t.Helper()
	rows, err := s.conn.Query(ctx, fmt.Sprintf(`SELECT c.table, c.name, c.type FROM system.columns AS c
		INNER JOIN system.tables AS t ON c.database = t.database AND c.table = t.name
		WHERE c.database = '%s' AND t.engine NOT LIKE '%%View'`, s.db))
	if err != nil {
		t.Fatal(err)
	}
	cols := map[string][]string{}
	for rows.Next() {
		var tbl, name, typ string
		if err := rows.Scan(&tbl, &name, &typ); err != nil {
			t.Fatal(err)
		}
		typ = strings.TrimSuffix(strings.TrimPrefix(typ, "LowCardinality("), ")")
		switch {
		case typ == "String" || strings.HasPrefix(typ, "FixedString"):
			cols[tbl] = append(cols[tbl], "position(`"+name+"`, '%[1]s') > 0")
		case typ == "Array(String)":
			cols[tbl] = append(cols[tbl], "arrayExists(x -> position(x, '%[1]s') > 0, `"+name+"`)")
		}
	}
	rows.Close()
	if len(cols["trace_items"]) < 10 {
		t.Fatalf("trace_items of %s has string columns %v", s.db, cols["trace_items"])
	}
	for tbl, preds := range cols {
		for _, sec := range secrets {
			var n uint64
			sec = strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(sec)
			q := fmt.Sprintf("SELECT count() FROM %s.`%s` WHERE ", s.db, tbl) + strings.ReplaceAll(strings.Join(preds, " OR "), "%[1]s", sec)
			if err := s.query(q, &n); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if n > 0 {
				t.Errorf("secret %q in %d rows of %s", sec, n, tbl)
			}
		}
	}
}
