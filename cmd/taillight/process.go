package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync/atomic"

	"github.com/taillight/taillight/processor"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/chsink"
)

func init() {
	register(&command{
		name:    "process",
		summary: "consumer-group worker: Kafka TraceItems → redacted raw rows and rollups in ClickHouse",
		help:    processHelp,
		flags: func() commandFlags {
			return &processFlags{proc: processor.DefaultConfig(), ch: chsink.DefaultConfig(), retain: chsink.DefaultRetention()}
		},
	})
}

type processFlags struct {
	proc    processor.Config
	ch      chsink.Config
	retain  chsink.Retention
	metrics string
	migrate bool
}

func (f *processFlags) register(c *cli) {
	c.config("", &f.proc)
	c.config("clickhouse.", &f.ch)
	c.config("retention.", &f.retain)
	c.fs.StringVar(&f.metrics, "listen.metrics", ":9102", "address of /metrics, /healthz and /readyz")
	c.fs.BoolVar(&f.migrate, "migrate", false, "apply pending ClickHouse migrations before consuming (else run 'taillight migrate' first)")
}

const processHelp = `Usage: taillight process [flags]

Consumes TraceItems from Kafka as a member of a consumer group, redacts them,
and writes raw rows and per-minute rollups to ClickHouse with an exactly-once
effect. Scale by running more processes with the same -kafka.group (up to one
per partition). SIGTERM flushes, commits and leaves the group.

Flags:
`

func (f *processFlags) run(ctx context.Context, log *slog.Logger, s stdio) int {
	if err := serveProcess(ctx, f, log); err != nil {
		log.Error("process stopped", "err", err)
		switch {
		case chsink.Reason(err) == chsink.ReasonAuth:
			fmt.Fprintln(s.err, "taillight process: ClickHouse refused the user or password (or its permissions); check -clickhouse.user and -clickhouse.password")
		case errors.Is(err, sinks.ErrSchema):
			fmt.Fprintln(s.err, "taillight process: the ClickHouse schema is missing or out of date; run 'taillight migrate' (or pass -migrate)")
		}
		return exitError
	}
	return exitOK
}

// processHeadroom is what the process needs beyond -memory.budget: the
// runtime, franz-go's buffered fetch, the ClickHouse connections' buffers.
const processHeadroom = 80 << 20

func serveProcess(ctx context.Context, f *processFlags, log *slog.Logger) error {
	reg := newRegistry()
	// The budget bounds live memory; the soft limit makes the collector
	// keep the heap near it instead of letting it grow to twice the live
	// size. GOMEMLIMIT, when set, wins.
	if os.Getenv("GOMEMLIMIT") == "" {
		budget := f.proc.MemoryBudget
		if budget == 0 {
			budget = processor.DefaultMemoryBudget
		}
		debug.SetMemoryLimit(budget + processHeadroom)
	}
	// Ops first: while ClickHouse does not answer, /readyz says so and the
	// process waits instead of exiting into a crash loop.
	ch := newDependency("ClickHouse", log)
	var proc atomic.Pointer[processor.Processor]
	ready := func() error {
		if err := ch.Ready(); err != nil {
			return err
		}
		if p := proc.Load(); p != nil {
			return p.Ready()
		}
		return errors.New("starting")
	}
	ops, err := startOps(f.metrics, reg, ready, nil, log)
	if err != nil {
		return err
	}
	defer ops.Close()
	log.Info("ops listening", "addr", ops.Addr())
	sink, err := connect(ctx, ch, f.proc.RetryMax, chsink.IsTransient, func(ctx context.Context) (*chsink.Writer, error) {
		// A stalled server accepts and never answers: bound each attempt.
		ctx, cancel := context.WithTimeout(ctx, f.ch.DialTimeout)
		defer cancel()
		return chsink.New(ctx, f.ch, log, reg)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting
		}
		return fmt.Errorf("connect to clickhouse: %w", err)
	}
	defer sink.Close()
	if f.migrate {
		res, err := sink.Migrate(ctx)
		if err != nil {
			return fmt.Errorf("migrate clickhouse: %w", err)
		}
		log.Info("clickhouse migrations checked", migrationCounts(res)...)
	}
	log.Info("kafka client", f.proc.Kafka.LogAttrs()...)
	p, err := processor.New(f.proc, sink, log, reg)
	if err != nil {
		return err
	}
	proc.Store(p)
	// Every processor applies retention: dropping a partition is
	// idempotent, and any one of them suffices.
	retainCtx, stopRetain := context.WithCancel(ctx)
	retained := make(chan struct{})
	go func() {
		defer close(retained)
		sink.RetainLoop(retainCtx, f.retain)
	}()
	defer func() {
		stopRetain()
		<-retained
	}()
	return p.Run(ctx)
}
