package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/taillight/taillight/internal/bench"
	"github.com/taillight/taillight/internal/flagx"
	"github.com/taillight/taillight/schemas"
)

func init() {
	register(&command{
		name:    "bench",
		summary: "end-to-end benchmark: Kafka → processor → ClickHouse against a decode-only consumer",
		help:    benchHelp,
		flags:   func() commandFlags { return new(benchFlags) },
	})
	register(&command{
		name:    "bench-ref",
		summary: "(used by bench) the decode-only reference consumer",
		run:     runBenchRef,
		hidden:  true,
	})
	register(&command{
		name:    "bench-process",
		summary: "(used by bench -cpuprofile) process with a CPU profile",
		run:     runBenchProcess,
		hidden:  true,
	})
}

type benchFlags struct {
	cfg        bench.Config
	latencyDur time.Duration
	procArgs   string
	jsonOut    string
}

func (f *benchFlags) register(c *cli) {
	c.fs.IntVar(&f.cfg.N, "n", 1_000_000, "TraceItems of about 1 KB in the throughput phase")
	c.fs.Uint64Var(&f.cfg.Seed, "seed", 1, "workload seed (as taillight generate)")
	c.fs.IntVar(&f.cfg.Partitions, "partitions", 4, "partitions of the benchmark topic")
	c.fs.Var((*flagx.List)(&f.cfg.Brokers), "kafka.brokers", "existing Kafka cluster, comma-separated seed brokers (default: start a local Apache Kafka)")
	c.fs.StringVar(&f.cfg.ClickHouse, "clickhouse.addr", "", "existing ClickHouse native address (default: start a private local ClickHouse; its CPU is measured only then)")
	c.fs.Float64Var(&f.cfg.LatencyRate, "latency-rate", 0, "offered events/s of the latency phase (default half the measured maximum)")
	c.fs.DurationVar(&f.latencyDur, "latency-duration", 20*time.Second, "length of the latency phase (0 skips it)")
	c.fs.StringVar(&f.cfg.ProcessExe, "process.exe", "", "taillight binary to migrate and process with (default: this one), e.g. another release for an A/B under the same harness")
	c.fs.StringVar(&f.procArgs, "process.args", "", "extra flags for 'taillight process', space-separated, e.g. \"-flush.linger=500ms\"")
	c.fs.StringVar(&f.cfg.CPUProfile, "cpuprofile", "", "write the processor's CPU profile to this file")
	c.fs.StringVar(&f.cfg.MemProfile, "memprofile", "", "write the processor's heap profile at its peak heap to this file")
	c.fs.DurationVar(&f.cfg.Timeout, "timeout", 30*time.Minute, "bound on each wait for rows")
	c.fs.StringVar(&f.jsonOut, "json", "", "also write the report as JSON to this file")
}

const benchHelp = `Usage: taillight bench [flags]

Loads a seeded workload into Kafka, runs a decode-only reference consumer and
then 'taillight process' (both as subprocesses, from the earliest offset) until
every row is queryable in ClickHouse, then measures event-to-queryable latency
at an offered rate. Reports events/s, MB/s, CPU-seconds per million events,
peak RSS and latency, with ratios to the reference and the targets.

Examples:
  taillight bench -n 20000 -latency-duration 5s
  taillight bench -json artifacts/bench.json

Flags:
`

func (f *benchFlags) run(ctx context.Context, log *slog.Logger, s stdio) int {
	f.cfg.ProcessArgs = strings.Fields(f.procArgs)
	f.cfg.LatencyDuration = f.latencyDur
	if f.latencyDur == 0 {
		f.cfg.LatencyDuration = -1
	}
	f.cfg.Log = log
	var err error
	if f.cfg.Exe, err = os.Executable(); err != nil {
		fmt.Fprintf(s.err, "taillight bench: %v\n", err)
		return exitError
	}
	if f.cfg.N <= 0 {
		fmt.Fprintln(s.err, "taillight bench: -n must be positive")
		return exitUsage
	}
	if err := f.cfg.Validate(); err != nil {
		fmt.Fprintf(s.err, "taillight bench: %v\n", err)
		return exitUsage
	}
	rep, err := bench.Run(ctx, f.cfg)
	return writeReport(s, "bench", rep, err, f.jsonOut)
}

// writeReport prints a benchmark's report as a table on stdout and, with
// jsonOut, as JSON to that file; or the error that ended the run.
func writeReport(s stdio, name string, rep interface{ WriteTable(io.Writer) }, err error, jsonOut string) int {
	if err == nil {
		rep.WriteTable(s.out)
		if jsonOut != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			err = os.WriteFile(jsonOut, append(b, '\n'), 0o644)
		}
	}
	if err != nil {
		fmt.Fprintf(s.err, "taillight %s: %v\n", name, err)
		return exitError
	}
	return exitOK
}

func runBenchRef(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet("bench-ref", s)
	cfg := bench.RefConfig{}
	fs.Var((*flagx.List)(&cfg.Brokers), "kafka.brokers", "Kafka seed brokers, comma-separated")
	fs.StringVar(&cfg.Topic, "kafka.topic", schemas.DefaultTopic, "topic to read from the earliest offset")
	fs.IntVar(&cfg.N, "n", 0, "records to read")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	res, err := bench.RunReference(ctx, cfg)
	if err != nil {
		fmt.Fprintf(s.err, "taillight bench-ref: %v\n", err)
		return exitError
	}
	b, _ := json.Marshal(res)
	fmt.Fprintf(s.out, "%s\n", b)
	return exitOK
}

// runBenchProcess is `process` under profiles: -cpuprofile FILE covers the
// run and is written when the processor stops (SIGTERM); -memprofile FILE is
// the heap profile taken when the heap in use was highest (sampled every
// 250ms), which is where peak RSS comes from.
func runBenchProcess(ctx context.Context, args []string, s stdio) int {
	var cpuFile, memFile string
	for len(args) >= 2 && (args[0] == "-cpuprofile" || args[0] == "-memprofile") {
		if args[0] == "-cpuprofile" {
			cpuFile = args[1]
		} else {
			memFile = args[1]
		}
		args = args[2:]
	}
	if cpuFile == "" && memFile == "" {
		fmt.Fprintln(s.err, "usage: taillight bench-process [-cpuprofile FILE] [-memprofile FILE] [process flags]")
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(s.err, "taillight bench-process: %v\n", err)
		return exitError
	}
	if cpuFile != "" {
		f, err := os.Create(cpuFile)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	if memFile != "" {
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- peakHeapProfile(memFile, stop) }()
		defer func() {
			close(stop)
			if err := <-done; err != nil {
				fmt.Fprintf(s.err, "taillight bench-process: heap profile: %v\n", err)
			}
		}()
	}
	return commands["process"].exec(ctx, args, s)
}

// peakHeapProfile keeps in file the heap profile of the moment the heap in
// use was highest, until stop closes.
func peakHeapProfile(file string, stop <-chan struct{}) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var peak uint64
	var ms runtime.MemStats
	for {
		select {
		case <-stop:
			return nil
		case <-t.C:
		}
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse <= peak {
			continue
		}
		peak = ms.HeapInuse
		var b bytes.Buffer
		if err := pprof.Lookup("heap").WriteTo(&b, 0); err != nil {
			return err
		}
		if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
}
