package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/chsink"
)

func init() {
	register(&command{
		name:    "migrate",
		summary: "create or upgrade the ClickHouse tables and views (idempotent)",
		help:    migrateHelp,
		flags:   func() commandFlags { return &migrateFlags{ch: chsink.DefaultConfig()} },
	})
}

type migrateFlags struct {
	ch      chsink.Config
	dryRun  bool
	verbose bool
}

func (f *migrateFlags) register(c *cli) {
	c.config("clickhouse.", &f.ch)
	c.fs.BoolVar(&f.dryRun, "dry-run", false, "print the statements that would run; change nothing")
	c.fs.BoolVar(&f.verbose, "v", false, "also print the statements run")
}

const migrateHelp = `Usage: taillight migrate [flags]

Applies the embedded ClickHouse DDL (storage/ddl) to -clickhouse.database,
creating it if missing, and records each migration in schema_migrations.
Already-recorded migrations are skipped; migrations marked for a newer
ClickHouse than the server are skipped and applied by a later run after an
upgrade. Safe to run again, and from several machines at once.

Flags:
`

func (f *migrateFlags) run(ctx context.Context, log *slog.Logger, s stdio) int {
	w, err := chsink.New(ctx, f.ch, log, nil)
	if err != nil {
		fmt.Fprintf(s.err, "taillight migrate: %v\n", err)
		return exitError
	}
	defer w.Close()
	server, err := w.ServerVersion(ctx)
	if err != nil {
		fmt.Fprintf(s.err, "taillight migrate: %v\n", err)
		return exitError
	}
	fmt.Fprintf(s.out, "ClickHouse %s at %s, database %s\n", server, f.ch.Addrs[0], f.ch.Database)
	var res []chsink.MigrationResult
	if f.dryRun {
		res, err = w.PlanMigrations(ctx)
	} else {
		res, err = w.Migrate(ctx)
	}
	printMigrations(s.out, res, f.dryRun || f.verbose)
	if err != nil {
		fmt.Fprintf(s.err, "taillight migrate: %v\n", err)
		if errors.Is(err, sinks.ErrSchema) {
			fmt.Fprintln(s.err, "taillight migrate: the server refused a statement; it will not succeed on retry")
		}
		return exitError
	}
	if f.dryRun {
		fmt.Fprintln(s.out, "dry run: nothing changed")
	}
	return exitOK
}

// printMigrations prints one line per migration, and the rendered
// statements under it when withSQL is set.
func printMigrations(w io.Writer, res []chsink.MigrationResult, withSQL bool) {
	for _, r := range res {
		line := fmt.Sprintf("%-32s %s", r.Migration.File, r.Status)
		if r.Note != "" {
			line += " (" + r.Note + ")"
		}
		fmt.Fprintln(w, line)
		if withSQL {
			for _, st := range r.Statements {
				fmt.Fprintf(w, "\n%s;\n\n", st)
			}
		}
	}
}

// migrationCounts are log attributes counting migrations by what Migrate
// did with them (each skip is logged by Migrate with its reason).
func migrationCounts(res []chsink.MigrationResult) []any {
	n := map[chsink.MigrationStatus]int{}
	for _, r := range res {
		n[r.Status]++
	}
	return []any{"applied", n[chsink.StatusApplied], "already_applied", n[chsink.StatusRecorded],
		"skipped_for_server_version", n[chsink.StatusServerOld]}
}
