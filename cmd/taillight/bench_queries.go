package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/taillight/taillight/internal/bench"
	"github.com/taillight/taillight/internal/flagx"
)

func init() {
	register(&command{
		name:    "bench-queries",
		summary: "query benchmark: days of history written as the processor does, every saved query timed",
		help:    benchQueriesHelp,
		flags: func() commandFlags {
			return &benchQueriesFlags{cfg: bench.QueryConfig{Histories: []time.Duration{24 * time.Hour, 96 * time.Hour}}}
		},
	})
}

type benchQueriesFlags struct {
	cfg     bench.QueryConfig
	jsonOut string
}

func (f *benchQueriesFlags) register(c *cli) {
	c.fs.Var((*daysList)(&f.cfg.Histories), "days", "history sizes in days, ascending, comma-separated: the first is written and measured, then extended to the next")
	c.fs.Float64Var(&f.cfg.Rate, "rate", 100, "simulated events/s")
	c.fs.IntVar(&f.cfg.Partitions, "partitions", 6, "partitions of the simulated topic")
	c.fs.Uint64Var(&f.cfg.Seed, "seed", 1, "workload seed (as taillight generate)")
	c.fs.IntVar(&f.cfg.Runs, "runs", 5, "runs of each query per window (the median is reported)")
	c.fs.StringVar(&f.cfg.ClickHouse, "clickhouse.addr", "", "existing ClickHouse native address (default: start a private local ClickHouse)")
	c.fs.StringVar(&f.cfg.Database, "clickhouse.database", "", "database to create for the run; must not exist (default qbench_<random>)")
	c.fs.BoolVar(&f.cfg.Keep, "keep", false, "keep the database on an existing server (default: drop it at the end)")
	c.fs.DurationVar(&f.cfg.CommitEvery, "commit-every", 5*time.Minute, "simulated time per raw stream and group commit (whole minutes)")
	c.fs.DurationVar(&f.cfg.SealEvery, "seal-every", 10*time.Minute, "simulated time between seals")
	c.fs.DurationVar(&f.cfg.Steady, "steady", 10*time.Minute, "simulated time before each measured size committed and sealed every minute, as the processor's sealer (negative: none)")
	c.fs.DurationVar(&f.cfg.MergeWait, "merge-wait", 10*time.Minute, "longest wait for the server's merges to settle before measuring (negative: do not wait)")
	c.fs.StringVar(&f.jsonOut, "json", "", "also write the report as JSON to this file")
	c.afterParse(func() error { return f.cfg.Validate() })
}

// daysList is a comma-separated list of day counts, as durations.
type daysList []time.Duration

func (d *daysList) String() string {
	s := make([]string, len(*d))
	for i, v := range *d {
		s[i] = strconv.FormatFloat(v.Hours()/24, 'f', -1, 64)
	}
	return strings.Join(s, ",")
}

func (d *daysList) Set(v string) error {
	var out []time.Duration
	for _, f := range flagx.Split(v) {
		n, err := strconv.ParseFloat(f, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive number of days", f)
		}
		out = append(out, time.Duration(n*24*float64(time.Hour)).Round(time.Minute))
	}
	*d = out
	return nil
}

const benchQueriesHelp = `Usage: taillight bench-queries [flags]

Writes -days of history at -rate events/s into a fresh database exactly as
the processor writes in steady operation (raw rows on chsink's stream, one
block per partition every 500 ms committed as group commits, sealing) on a
simulated clock, in batches of -commit-every; the last -steady before each
size is committed and sealed every minute, as the processor's sealer does.
Then it times every saved query through the dashboard's own handler over the
last hour and the last 24 hours (medians of -runs), and the page's first
load with every panel at once. Each history size is measured; the targets
are checked at the longest.

Examples:
  taillight bench-queries -days 1,4
  taillight bench-queries -days 0.25,1 -rate 20 -json artifacts/queries.json

Flags:
`

func (f *benchQueriesFlags) run(ctx context.Context, log *slog.Logger, s stdio) int {
	f.cfg.Log = log
	rep, err := bench.RunQueries(ctx, f.cfg)
	return writeReport(s, "bench-queries", rep, err, f.jsonOut)
}

var _ flag.Value = (*daysList)(nil)
