package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	livetail "github.com/taillight/taillight/internal/tail"
)

func init() {
	register(&command{
		name:    "tail",
		summary: "live view of the trace-items topic, filtered and redacted (like wrangler tail)",
		help:    tailHelp,
		flags:   func() commandFlags { return &tailFlags{cfg: livetail.DefaultConfig()} },
	})
}

type tailFlags struct {
	cfg   livetail.Config
	color string
}

func (f *tailFlags) register(c *cli) {
	f.cfg.RegisterFlags(c.fs, "")
	c.fs.StringVar(&f.color, "color", "auto", "colours in the pretty format: auto (only on a terminal, and not when NO_COLOR is set), always or never")
}

const tailHelp = `Usage: taillight tail [flags]

Prints the invocations arriving on the trace-items topic, one line each (time,
script, method, status, outcome, URL) followed by their logs and exceptions,
or one TraceItem per line with -format json. It reads every partition
directly, without a consumer group, so it never disturbs the processors, and
starts at the end unless -from-beginning is given. Filters combine with AND;
a comma-separated list matches any of its values. Undecodable records are
reported as one warning line on stderr.

Every item is redacted with the default (Cloudflare) policy before it is
filtered or shown. There is no -unredacted: the topic holds exactly what the
producers sent, and tail never shows more than the dashboards do.

Flags:
`

func (f *tailFlags) run(ctx context.Context, log *slog.Logger, s stdio) int {
	switch f.color {
	case "always":
		f.cfg.Color = true
	case "never":
	case "auto":
		f.cfg.Color = isTerminal(s.out) && os.Getenv("NO_COLOR") == ""
	default:
		fmt.Fprintf(s.err, "taillight tail: -color %q: want auto, always or never\n", f.color)
		return exitUsage
	}
	t, err := livetail.New(f.cfg, s.out, s.err, log)
	if err != nil {
		fmt.Fprintf(s.err, "taillight tail: %v\n", err)
		return exitUsage
	}
	if err := t.Run(ctx); err != nil {
		log.Error("tail stopped", "err", err)
		return exitError
	}
	return exitOK
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
