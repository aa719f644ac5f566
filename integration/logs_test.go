package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/processor/proctest"
	"github.com/taillight/taillight/sinks/memsink"

	"github.com/taillight/taillight/internal/testenv"
)

// TestProcessorTopicRecreated: the topic is deleted and created again with
// more partitions while events of the first log are stored. The processor
// stores the new partition, halts the others (their topic ID changed)
// without overwriting anything, and after `taillight relog` stores every
// event of both logs once: trace_items and the views equal both ground
// truths together.
func TestProcessorTopicRecreated(t *testing.T) {
	pe := newProcEnv(t, 3)
	pe.produce(t, 11, 3000, 0)
	first := pe.g
	ip := startInproc(t, pe.config("g"), pe.sink(t))
	pe.waitDrained(t, 3*time.Minute)
	if err := ip.wait(t); err != nil {
		t.Fatal(err)
	}

	adm := kadm.NewClient(pe.env.KafkaClient(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := adm.DeleteTopic(ctx, pe.topic); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	// Deletion completes in the background: create until it has.
	testenv.Eventually(t, 2*time.Minute, 100*time.Millisecond, func() bool {
		resp, err := adm.CreateTopic(ctx, 4, int16(min(3, len(pe.env.Brokers))), nil, pe.topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			t.Fatalf("create the topic again: %v", err)
		}
		return err == nil
	}, "the deleted topic could not be created again")
	second := proctest.New(4)
	second.Generate(t, rand.New(rand.NewPCG(12, 13)), 1500, 0)
	pe.g = second
	cl := pe.env.KafkaClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, r := range second.Records {
		cl.Produce(ctx, &kgo.Record{Topic: pe.topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	ip = startInproc(t, pe.config("g"), pe.sink(t))
	testenv.Eventually(t, 2*time.Minute, 100*time.Millisecond, func() bool {
		return ip.metric(t, "taillight_processor_halted_partitions") == 3
	}, "the 3 partitions of the first log were not halted")
	err := ip.p.Ready()
	if err == nil || !strings.Contains(err.Error(), "taillight relog") {
		t.Fatalf("Ready = %v; want the halted partitions and the recovery step", err)
	}
	// The new partition 3 is consumed meanwhile: wait for its rows, then
	// check nothing else was stored once the processor stopped.
	var raw uint64
	halted := uint64(len(first.Valid) + countPartition(second, 3))
	testenv.Poll(2*time.Minute, 200*time.Millisecond, func() bool {
		pe.query(t, fmt.Sprintf("SELECT count() FROM %s.trace_items FINAL", pe.db), &raw)
		return raw >= halted
	})
	if err := ip.wait(t); err != nil {
		t.Fatal(err)
	}
	pe.query(t, fmt.Sprintf("SELECT count() FROM %s.trace_items FINAL", pe.db), &raw)
	if raw != halted {
		t.Fatalf("trace_items holds %d rows while halted; want %d (the first log and the new partition 3)", raw, halted)
	}

	ch := pe.chConfig()
	out, err := exec.Command(TaillightBinary(t), "relog", "-kafka.brokers", strings.Join(pe.env.Brokers, ","),
		"-topic", pe.topic, "-clickhouse.addr", ch.Addrs[0], "-clickhouse.database", ch.Database,
		"-clickhouse.user", ch.User, "-clickhouse.password", ch.Password).CombinedOutput()
	if err != nil {
		t.Fatalf("taillight relog: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "starts over as log "+pe.topic+"~1"); n != 3 {
		t.Fatalf("taillight relog restarted %d partitions; want 3:\n%s", n, out)
	}

	ip = startInproc(t, pe.config("g"), pe.sink(t))
	want := uint64(len(first.Valid) + len(second.Valid))
	var counted uint64
	if !testenv.Poll(3*time.Minute, 200*time.Millisecond, func() bool {
		pe.query(t, fmt.Sprintf("SELECT count() FROM %s.trace_items FINAL", pe.db), &raw)
		pe.query(t, fmt.Sprintf("SELECT toUInt64(sum(requests)) FROM %s.script_outcomes_1m", pe.db), &counted)
		return raw == want && counted == want
	}) {
		t.Fatalf("%d raw rows and %d counted requests; want %d", raw, counted, want)
	}
	if err := ip.wait(t); err != nil {
		t.Fatal(err)
	}
	total := map[memsink.Key]memsink.Totals{}
	for _, g := range []*proctest.Truth{first, second} {
		for k, v := range g.Totals {
			s := total[k]
			s.Merge(v)
			total[k] = s
		}
	}
	DiffTotals(t, "views against both logs", ReadViews(t, pe.conn, pe.db), total)
	var renamed uint64
	pe.query(t, fmt.Sprintf("SELECT count() FROM %s.trace_items FINAL WHERE kafka_topic = '%s~1'", pe.db, pe.topic), &renamed)
	if want := uint64(len(second.Valid) - countPartition(second, 3)); renamed != want {
		t.Errorf("%d rows stored under the new log name; want %d", renamed, want)
	}
}

func countPartition(g *proctest.Truth, part int64) int {
	n := 0
	for k := range g.Valid {
		if k[0] == part {
			n++
		}
	}
	return n
}
