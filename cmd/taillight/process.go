package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/taillight/taillight/internal/kafkaauth"
	"github.com/taillight/taillight/processor"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/chsink"
)

func init() {
	register(&command{
		name:    "process",
		summary: "consumer-group worker: Kafka TraceItems → redacted raw rows and rollups in ClickHouse",
		run:     runProcess,
	})
}

type processFlags struct {
	proc    processor.Config
	auth    kafkaauth.Config
	ch      chsink.Config
	retain  chsink.Retention
	log     logFlags
	metrics string
	migrate bool
}

func (f *processFlags) register(fs *flag.FlagSet) {
	f.proc.RegisterFlags(fs, "")
	f.auth.RegisterFlags(fs, "kafka.")
	f.ch = chsink.DefaultConfig()
	f.ch.RegisterFlags(fs, "clickhouse.")
	f.retain = chsink.DefaultRetention()
	f.retain.RegisterFlags(fs, "retention.")
	f.log.register(fs)
	fs.StringVar(&f.metrics, "listen.metrics", ":9102", "address of /metrics, /healthz and /readyz")
	fs.BoolVar(&f.migrate, "migrate", false, "apply pending ClickHouse migrations before consuming (else run 'taillight migrate' first)")
}

// commandLogger builds the logger lf asks for and runs the validations in
// order; the first error is printed as "taillight NAME: err" and ok is false
// (a usage error: exitUsage).
func commandLogger(s stdio, name string, lf *logFlags, validate ...func() error) (log *slog.Logger, ok bool) {
	log, err := lf.logger(s.err)
	for _, v := range validate {
		if err != nil {
			break
		}
		err = v()
	}
	if err != nil {
		fmt.Fprintf(s.err, "taillight %s: %v\n", name, err)
		return nil, false
	}
	return log, true
}

func runProcess(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet("process", s)
	var f processFlags
	f.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: taillight process [flags]

Consumes TraceItems from Kafka as a member of a consumer group, redacts them,
and writes raw rows and per-minute rollups to ClickHouse with an exactly-once
effect. Scale by running more processes with the same -kafka.group (up to one
per partition). SIGTERM flushes, commits and leaves the group.

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	log, ok := commandLogger(s, "process", &f.log, f.proc.Validate, f.ch.Validate, f.auth.Validate, f.retain.Validate)
	if !ok {
		return exitUsage
	}
	if err := serveProcess(ctx, &f, log); err != nil {
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

func serveProcess(ctx context.Context, f *processFlags, log *slog.Logger) error {
	reg := newRegistry()
	sink, err := chsink.New(ctx, f.ch, log, reg)
	if err != nil {
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
	auth, err := f.auth.Opts()
	if err != nil {
		return err
	}
	f.proc.KafkaOpts = append(f.proc.KafkaOpts, auth...)
	log.Info("kafka client", f.auth.LogAttrs()...)
	p, err := processor.New(f.proc, sink, log, reg)
	if err != nil {
		return err
	}
	ops, err := startOps(f.metrics, reg, p.Ready, nil, log)
	if err != nil {
		return err
	}
	defer ops.Close()
	log.Info("ops listening", "addr", ops.Addr())
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
