package bench

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/producer"
)

// TestRunReference reads generated items back through an in-process fake
// Kafka: every record once, its bytes counted, and a poison value fails.
func TestRunReference(t *testing.T) {
	c, err := devenv.StartKfake(1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := createTopic(ctx, cl, "ref", 3); err != nil {
		t.Fatal(err)
	}
	gen, err := producer.NewGenerator(producer.GenConfig{Seed: 3, Start: time.Unix(1_800_000_000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	var bytes int64
	for range n {
		b, tr := gen.Next(nil)
		bytes += int64(len(b))
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ref", Key: []byte(tr.Script), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	res, err := RunReference(ctx, RefConfig{Brokers: c.ListenAddrs(), Topic: "ref", N: n})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != n || res.Bytes != bytes || res.Seconds <= 0 {
		t.Errorf("read %d records, %d bytes in %v s; want %d, %d", res.Records, res.Bytes, res.Seconds, n, bytes)
	}

	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ref", Value: []byte(`{"outcome": `)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := RunReference(ctx, RefConfig{Brokers: c.ListenAddrs(), Topic: "ref", N: n + 1}); err == nil {
		t.Error("a record that is not JSON did not fail the reference consumer")
	}
	if _, err := RunReference(ctx, RefConfig{Topic: "ref", N: 1}); err == nil {
		t.Error("no brokers did not fail")
	}
}
