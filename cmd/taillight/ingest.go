package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taillight/taillight/producer"
)

func init() {
	register(&command{
		name:    "ingest",
		summary: "HTTP endpoint for Tail Workers: POST /v1/traces, published to Kafka",
		help:    ingestHelp,
		flags: func() commandFlags {
			return &ingestFlags{kafka: producer.DefaultConfig(), ingest: producer.DefaultIngestConfig()}
		},
	})
}

type ingestFlags struct {
	kafka    producer.Config
	ingest   producer.IngestConfig
	listen   string
	ops      string
	opsAlias bool // the deprecated -ops.listen was given
	shutdown time.Duration
}

func (f *ingestFlags) register(c *cli) {
	c.config("", &f.kafka)
	c.config("", &f.ingest)
	c.fs.StringVar(&f.listen, "listen", ":8080", "address of POST "+producer.IngestPath+" (and of /metrics, /healthz, /readyz unless -listen.metrics is set; a bare port such as 0 listens on all interfaces)")
	c.fs.StringVar(&f.ops, "listen.metrics", "", "separate address for /metrics, /healthz and /readyz (empty: served on -listen)")
	deprecatedFlag(c.fs, "ops.listen", "listen.metrics", &f.opsAlias)
	c.fs.DurationVar(&f.shutdown, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long in-flight requests may take to finish")
}

const ingestHelp = `Usage: taillight ingest [flags]

Accepts TraceItems from Cloudflare Tail Workers (a JSON array, NDJSON, gzip)
and answers 202 once Kafka acknowledged every item. Tokens: -ingest.token
(or TAILLIGHT_INGEST_TOKEN) and/or -ingest.tokens-file.

Flags:
`

func (f *ingestFlags) run(ctx context.Context, log *slog.Logger, s stdio) int {
	if f.opsAlias {
		log.Warn("-ops.listen (TAILLIGHT_OPS_LISTEN) is deprecated: use -listen.metrics (TAILLIGHT_LISTEN_METRICS), as in process and dev")
	}
	if err := serveIngest(ctx, f, log); err != nil {
		log.Error("ingest stopped", "err", err)
		return exitError
	}
	return exitOK
}

func serveIngest(ctx context.Context, f *ingestFlags, log *slog.Logger) error {
	reg := newRegistry()
	pub, err := producer.New(f.kafka, log, reg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), f.shutdown)
		defer cancel()
		if err := pub.Close(cctx); err != nil {
			log.Warn("closing the Kafka producer", "err", err)
		}
	}()
	in, err := producer.NewIngest(f.ingest, pub, log, reg)
	if err != nil {
		return err
	}
	boundMemory(ctx, f.ingest.MaxInflightBytes, in, log)
	ready := func() error {
		pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return pub.Ready(pctx)
	}

	mux := http.NewServeMux()
	mux.Handle(producer.IngestPath, in)
	if f.ops == "" {
		// One port for everything: a Tail Worker deployment behind a load
		// balancer needs only one, and probes hit the same process.
		opsHandlers(mux, reg, ready)
	} else {
		ops, err := startOps(f.ops, reg, ready, nil, log)
		if err != nil {
			return err
		}
		defer ops.Close()
		log.Info("ops listening", "addr", ops.Addr())
	}

	ln, err := net.Listen("tcp", listenAddr(f.listen, ":8080"))
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// A slow client must not hold a connection (and its buffer) forever.
		ReadTimeout: time.Minute,
		// Covers the wait for Kafka's acks.
		WriteTimeout: f.ingest.PublishTimeout + time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("ingest listening", append([]any{"addr", ln.Addr().String(), "path", producer.IngestPath,
		"topic", f.kafka.Topic}, f.kafka.Kafka.LogAttrs()...)...)

	select {
	case err := <-errc:
		return fmt.Errorf("serve HTTP: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests", "timeout", f.shutdown)
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("drain in-flight requests: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve HTTP: %w", err)
	}
	return nil
}

// opsHandlers adds /metrics, /healthz and /readyz to mux (as startOps does
// on its own listener).
func opsHandlers(mux *http.ServeMux, reg *prometheus.Registry, ready func() error) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
}

// memoryHeadroom is what the Go runtime may use beyond the in-flight
// budget before its garbage collector works harder: the producer's
// buffers, decoding garbage, the runtime itself.
const memoryHeadroom = 64 << 20

// boundMemory keeps ingest's memory near its request budget: a soft
// memory limit of budget + memoryHeadroom for the Go runtime (unless
// GOMEMLIMIT is set), and, once a burst is over (nothing in flight), the
// heap it grew is collected and handed back to the OS rather than kept
// for the next one.
func boundMemory(ctx context.Context, budget int64, in *producer.Ingest, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(budget + memoryHeadroom)
		log.Info("memory limit for the Go runtime", "bytes", budget+memoryHeadroom, "from", "-ingest.max-inflight-bytes + 64 MiB")
	}
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		// Heap (objects, free or not yet collected, and free spans not yet
		// returned) as of the last hand-back.
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/free:bytes"}}
		heap := func() uint64 {
			metrics.Read(sample)
			return sample[0].Value.Uint64() + sample[1].Value.Uint64()
		}
		base := heap()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// After a burst no allocation may trigger a collection for
			// minutes, so the runtime would keep its peak: collect and
			// return the memory once nothing is in flight.
			if in.InflightBytes() == 0 && heap() > base+memoryHeadroom {
				debug.FreeOSMemory()
				base = heap()
			}
		}
	}()
}
