package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/taillight/taillight/internal/flagx"
	"github.com/taillight/taillight/kafkaclient"
	"github.com/taillight/taillight/processor"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/chsink"
)

func init() {
	register(&command{
		name:    "relog",
		summary: "start partitions whose Kafka log changed (topic recreated, failover) over under a new log identity",
		help:    relogHelp,
		flags: func() commandFlags {
			return &relogFlags{kafka: kafkaclient.Config{Brokers: []string{"127.0.0.1:9092"}}, ch: chsink.DefaultConfig()}
		},
	})
}

type relogFlags struct {
	kafka      kafkaclient.Config
	topic      string
	partitions string
	parts      []int32 // -partitions, parsed
	dryRun     bool
	ch         chsink.Config
}

func (f *relogFlags) register(c *cli) {
	c.fs.StringVar(&f.topic, "kafka.topic", schemas.DefaultTopic, "the TraceItem topic")
	c.fs.StringVar(&f.topic, "topic", schemas.DefaultTopic, "alias of -kafka.topic")
	c.fs.StringVar(&f.partitions, "partitions", "", "comma-separated partitions to consider (default: all of the topic's)")
	c.afterParse(f.parsePartitions)
	c.fs.BoolVar(&f.dryRun, "dry-run", false, "say what would be done; change nothing")
	c.config("clickhouse.", &f.ch)
	c.config("kafka.", &f.kafka)
}

func (f *relogFlags) parsePartitions() error {
	for _, v := range flagx.Split(f.partitions) {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("-partitions: %q is not a partition number", v)
		}
		f.parts = append(f.parts, int32(n))
	}
	return nil
}

const relogHelp = `Usage: taillight relog [flags]

A processor halts a partition whose Kafka log changed under the watermark
stored in ClickHouse: the topic was deleted and created again (its topic ID
changed), or the watermark lies past the log end (an unclean leader
election, a failover to a mirror that is behind). Nothing of it is consumed,
so nothing stored is overwritten or counted twice.

relog records the next log generation of each such partition. A processor
assigned the partition then stores it under the log name <topic>~N
(kafka_topic in trace_items) from the start of its new log; stored rows keep
their coordinates. Partitions in order are left alone. Restart the
processors that report halted partitions (their /readyz says which).

Flags:
`

func (f *relogFlags) run(ctx context.Context, log *slog.Logger, s stdio) int {
	fail := func(err error) int {
		fmt.Fprintf(s.err, "taillight relog: %v\n", err)
		return exitError
	}
	w, err := chsink.New(ctx, f.ch, log, nil)
	if err != nil {
		return fail(fmt.Errorf("connect to clickhouse: %w", err))
	}
	defer w.Close()
	cl, err := f.kafka.NewClient(nil, nil, "")
	if err != nil {
		return fail(fmt.Errorf("kafka client: %w", err))
	}
	defer cl.Close()
	var sink sinks.Sink = w
	if f.dryRun {
		sink = dryRunLogs{w}
	}
	res, err := processor.Relog(ctx, kadm.NewClient(cl), sink, f.topic, f.parts)
	for _, r := range res {
		switch {
		case r.Problem == "":
			fmt.Fprintf(s.out, "partition %d: in order (log %s); left alone\n", r.Partition, sinks.LogName(f.topic, r.From.Generation))
		case f.dryRun:
			fmt.Fprintf(s.out, "partition %d: %s\n  would start over as log %s\n", r.Partition, r.Problem, sinks.LogName(f.topic, r.To.Generation))
		default:
			fmt.Fprintf(s.out, "partition %d: %s\n  starts over as log %s\n", r.Partition, r.Problem, sinks.LogName(f.topic, r.To.Generation))
		}
	}
	if err != nil {
		return fail(err)
	}
	if f.dryRun {
		fmt.Fprintln(s.out, "dry run: nothing changed")
	}
	return exitOK
}

// dryRunLogs records nothing.
type dryRunLogs struct{ *chsink.Writer }

func (dryRunLogs) SetLogIdentity(context.Context, string, int32, sinks.LogIdentity) error { return nil }
