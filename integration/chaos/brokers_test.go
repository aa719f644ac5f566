package chaos

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/taillight/taillight/integration"
	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/producer"
)

// sender POSTs generated items to ingest in batches, each item carrying an
// event id in dispatchNamespace, until stopped. A batch answered 202 is
// acknowledged; any other answer is not, and is not retried (so an item can
// reach Kafka at most once, and acknowledged ones must).
type sender struct {
	url, token string
	gen        *producer.Generator

	mu      sync.Mutex
	sent    int
	acked   map[string]producer.Truth // by event id
	acks    [][2]time.Time            // start and end of each 202'd batch
	refused map[int]int               // other answers by status (0: transport error)
}

func (sd *sender) batch(n int) {
	var body bytes.Buffer
	ids := make([]string, 0, n)
	truths := make([]producer.Truth, 0, n)
	var item []byte
	for range n {
		var tr producer.Truth
		item, tr = sd.gen.Next(item[:0])
		sd.sent++
		id := "eid-" + strconv.Itoa(sd.sent)
		body.WriteString(`{"dispatchNamespace":"` + id + `",`)
		body.Write(item[1:])
		body.WriteByte('\n')
		ids = append(ids, id)
		truths = append(truths, tr)
	}
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, sd.url, &body)
	req.Header.Set("Authorization", "Bearer "+sd.token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	code := 0
	if err == nil {
		code = resp.StatusCode
		resp.Body.Close()
	}
	sd.mu.Lock()
	defer sd.mu.Unlock()
	if code != http.StatusAccepted {
		sd.refused[code]++
		return
	}
	sd.acks = append(sd.acks, [2]time.Time{start, time.Now()})
	for i, id := range ids {
		sd.acked[id] = truths[i]
	}
}

// firstAckAfter returns how long after t0 the first batch sent after t0
// was acknowledged, or -1.
func (sd *sender) firstAckAfter(t0 time.Time) time.Duration {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	for _, a := range sd.acks {
		if a[0].After(t0) {
			return a[1].Sub(t0)
		}
	}
	return -1
}

// TestChaosThreeBrokers: a three-broker cluster (replication factor 3,
// min.insync.replicas 2) under ingest (producer.Ingest over a Publisher,
// acks=all, idempotent) and two processors; the leader of partition 0 is
// SIGKILLed and later restarted, then another broker likewise. Invariant:
// every item ingest acknowledged (202) is in trace_items FINAL exactly once
// (by Kafka coordinates and by the event id planted in dispatchNamespace),
// no item appears twice and nothing unsent appears; every record in the
// topic is a row (none is poison); every view equals the counts from
// trace_items FINAL; bounded memory; none of a sample of the generator's
// planted secrets in ClickHouse, logs or /metrics.
func TestChaosThreeBrokers(t *testing.T) {
	env := integration.Start(t)
	k := integration.StartKafkaCluster(t, 3)
	brokers := k.Brokers()
	s := newStream(t, env, brokers, 3, 3)

	pcfg := producer.DefaultConfig()
	pcfg.Kafka.Brokers, pcfg.Topic = brokers, s.topic
	pub, err := producer.New(pcfg, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	icfg := producer.DefaultIngestConfig()
	icfg.Tokens = []string{"chaos-ingest-token"}
	in, err := producer.NewIngest(icfg, pub, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in)
	defer srv.Close()
	gen, err := producer.NewGenerator(producer.GenConfig{Seed: 3, Start: time.Now().Add(-30 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	sd := &sender{url: srv.URL + producer.IngestPath, token: "chaos-ingest-token", gen: gen,
		acked: map[string]producer.Truth{}, refused: map[int]int{}}

	f := newFleet(t, s, "brokers")
	f.start()
	f.start()
	stop := make(chan struct{})
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		for {
			select {
			case <-stop:
				return
			default:
			}
			sd.batch(50)
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-sending
	}()

	phase := size(5*time.Second, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	<-time.After(phase)
	adm := kadm.NewClient(integration.NewKafkaClient(t, brokers))
	md, err := adm.Metadata(ctx, s.topic)
	if err != nil {
		t.Fatal(err)
	}
	leader := md.Topics[s.topic].Partitions[0].Leader
	victims := []int{int(leader) - 1, int(leader) % 3} // node ids are index+1
	var recover []time.Duration
	for _, i := range victims {
		if k.NodeID(i) != int32(i+1) {
			t.Fatalf("broker %d has node id %d; want %d", i, k.NodeID(i), i+1)
		}
		t0 := time.Now()
		if err := k.StopBroker(ctx, i, true); err != nil {
			t.Fatal(err)
		}
		// Recovery: the first batch sent after the kill acknowledged.
		testenv.Eventually(t, 2*time.Minute, 50*time.Millisecond, func() bool { return sd.firstAckAfter(t0) >= 0 },
			"no ingest batch acknowledged within 2 minutes of killing broker %d", i)
		recover = append(recover, sd.firstAckAfter(t0))
		<-time.After(time.Until(t0.Add(phase)))
		if err := k.StartBroker(ctx, i); err != nil {
			t.Fatal(err)
		}
		<-time.After(phase)
	}
	close(stop)
	<-sending
	sd.mu.Lock()
	sent, acked, refused := sd.sent, len(sd.acked), fmt.Sprint(sd.refused)
	sd.mu.Unlock()
	if acked == 0 {
		t.Fatal("ingest acknowledged nothing")
	}

	// Drained when the rows stop at the topic's record count.
	ends, err := adm.ListEndOffsets(ctx, s.topic)
	if err != nil {
		t.Fatal(err)
	}
	var records int64
	ends.Each(func(o kadm.ListedOffset) { records += o.Offset })
	t0 := time.Now()
	for {
		var n uint64
		if err := s.query(fmt.Sprintf("SELECT count() FROM %s.trace_items FINAL", s.db), &n); err == nil && int64(n) >= records {
			break
		}
		f.crashed()
		if time.Since(t0) > size(3*time.Minute, 20*time.Minute) {
			s.stuck()
			t.Fatalf("trace_items FINAL never reached the topic's %d records", records)
		}
		<-time.After(200 * time.Millisecond)
	}
	drain := time.Since(t0)
	logs, metrics := f.finish()

	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT kafka_partition, kafka_offset, dispatch_namespace FROM %s.trace_items FINAL", s.db))
	if err != nil {
		t.Fatal(err)
	}
	byOffset, byID := map[[2]int64]bool{}, map[string]bool{}
	dups, idDups, unsent := 0, 0, 0
	for rows.Next() {
		var p int32
		var o uint64
		var id string
		if err := rows.Scan(&p, &o, &id); err != nil {
			t.Fatal(err)
		}
		if k := [2]int64{int64(p), int64(o)}; byOffset[k] {
			dups++
		} else {
			byOffset[k] = true
		}
		n, err := strconv.Atoi(strings.TrimPrefix(id, "eid-"))
		if err != nil || n < 1 || n > sent {
			unsent++
		}
		if byID[id] {
			idDups++
		}
		byID[id] = true
	}
	rows.Close()
	lost := 0
	for id := range sd.acked {
		if !byID[id] {
			if lost++; lost <= 5 {
				t.Errorf("acknowledged item %s lost", id)
			}
		}
	}
	if dups+idDups+unsent+lost > 0 {
		t.Errorf("trace_items FINAL: %d duplicate offsets, %d duplicate event ids, %d unknown ids, %d acknowledged items lost", dups, idDups, unsent, lost)
	}
	if int64(len(byOffset)) != records {
		t.Errorf("trace_items FINAL holds %d records; the topic %d (none is poison)", len(byOffset), records)
	}
	integration.DiffTotals(t, "views against trace_items FINAL", integration.ReadViews(t, s.conn, s.db), s.viewsFromRaw(ctx))

	var sample []string
	for _, tr := range sd.acked {
		if len(sample) >= 40 {
			break
		}
		sample = append(sample, tr.Secrets...)
	}
	if len(sample) == 0 {
		t.Fatal("no planted secret among the acknowledged items")
	}
	s.checkClickHouseSecrets(ctx, sample)
	for _, sec := range append(sample, "chaos-ingest-token") {
		if strings.Contains(logs, sec) || strings.Contains(metrics, sec) {
			t.Errorf("secret %q in the processors' logs or metrics", sec)
		}
	}
	t.Logf("CHAOS %s mode=%s sent=%d acknowledged=%d refused=%s records_in_topic=%d rows=%d dup_offsets=%d dup_ids=%d lost=%d unknown=%d "+
		"first_ack_after_kill=%v drain=%s peak_rss_mib=%d",
		t.Name(), size("fast", "full"), sent, acked, refused, records, len(byOffset), dups, idDups, lost, unsent,
		recover, drain.Round(time.Second), f.peak.Load()>>20)
}
