package producer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkIngest measures POST /v1/traces on loopback into kfake, 202 (all
// items acknowledged) per request, with many concurrent senders as a fleet
// of Tail Workers would be.
// worker= sets ?workerId=, which ingest adds to every item.
func BenchmarkIngest(b *testing.B) {
	for _, bc := range []struct {
		items  int
		worker string
	}{{1, ""}, {10, ""}, {100, ""}, {100, "app-1"}} {
		items := bc.items
		name := fmt.Sprintf("items=%d", items)
		if bc.worker != "" {
			name += "/worker=" + bc.worker
		}
		b.Run(name, func(b *testing.B) {
			e := newIngestEnv(b, nil)
			if bc.worker != "" {
				e.url += "?" + WorkerIDParam + "=" + bc.worker
			}
			bodies := make([][]byte, 32)
			var size int
			for i := range bodies {
				g, err := NewGenerator(GenConfig{Seed: uint64(i), Start: time.Now()})
				if err != nil {
					b.Fatal(err)
				}
				body := []byte{'['}
				for j := range items {
					if j > 0 {
						body = append(body, ',')
					}
					body, _ = g.Next(body)
				}
				bodies[i] = append(body, ']')
				size += len(bodies[i])
			}
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			b.SetBytes(int64(size / len(bodies)))
			b.ReportAllocs()
			b.SetParallelism(8)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					req, _ := http.NewRequest(http.MethodPost, e.url, bytes.NewReader(bodies[i%len(bodies)]))
					req.Header.Set("Authorization", "Bearer "+testToken)
					req.Header.Set("Content-Type", "application/json")
					res, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusAccepted {
						b.Errorf("status %d", res.StatusCode)
						return
					}
				}
			})
			el := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N*items)/el, "events/s")
			b.ReportMetric(float64(b.N)/el, "requests/s")
		})
	}
}

// BenchmarkPublishRaw measures synchronous publishing of 100-item batches
// (the ingest path without HTTP), 8 callers at a time.
func BenchmarkPublishRaw(b *testing.B) {
	c := newCluster(b)
	p := newPublisher(b, c.ListenAddrs(), nil)
	g, err := NewGenerator(GenConfig{Seed: 1, Start: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 100
	items := make([]RawItem, batch)
	size := 0
	for i := range items {
		v, tr := g.Next(nil)
		items[i] = RawItem{Key: []byte(tr.Script), Value: v}
		size += len(v)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.SetParallelism(8)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.PublishRaw(context.Background(), items...); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkPublishAsync measures fire-and-forget publishing with the
// bounded buffer as backpressure, flushed at the end.
func BenchmarkPublishAsync(b *testing.B) {
	c := newCluster(b)
	p := newPublisher(b, c.ListenAddrs(), nil)
	g, err := NewGenerator(GenConfig{Seed: 1, Start: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	items := make([]RawItem, 1000)
	size := 0
	for i := range items {
		v, tr := g.Next(nil)
		items[i] = RawItem{Key: []byte(tr.Script), Value: v}
		size += len(v)
	}
	b.SetBytes(int64(size / len(items)))
	b.ReportAllocs()
	ctx := context.Background()
	var failed int
	cb := func(err error) {
		if err != nil {
			failed++ // callbacks run serially
		}
	}
	start := time.Now()
	i := 0
	for b.Loop() {
		p.PublishRawAsync(ctx, items[i%len(items)], cb)
		i++
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "events/s")
	if failed > 0 {
		b.Fatalf("%d records failed", failed)
	}
}
