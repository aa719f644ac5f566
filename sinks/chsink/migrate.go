package chsink

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/taillight/taillight/storage"
)

// MigrationStatus says what Migrate did with one migration.
type MigrationStatus string

// Migration statuses.
const (
	StatusApplied      MigrationStatus = "applied"          // its statements ran and it was recorded
	StatusRecorded     MigrationStatus = "already applied"  // recorded earlier: skipped
	StatusServerOld    MigrationStatus = "skipped"          // needs a newer server: skipped, not recorded
	StatusPending      MigrationStatus = "pending"          // dry run: would be applied
	StatusBootstrap    MigrationStatus = "ensured"          // 000, run on every migrate (all IF NOT EXISTS)
	StatusBootstrapDry MigrationStatus = "would be ensured" // 000 in a dry run
)

// MigrationResult is one migration's outcome.
type MigrationResult struct {
	Migration  storage.Migration
	Status     MigrationStatus
	Statements []string // rendered; the ones run (or, in a dry run, to run)
	// Note explains a skip: the version required, or a changed checksum.
	Note string
}

// Migrate applies the embedded DDL (storage.Migrations) to cfg.Database,
// creating the database if missing: the bootstrap 000 always, then every
// migration not yet recorded in schema_migrations whose "-- requires:"
// version the server meets, each recorded once all its statements ran.
// Safe to run again and concurrently (every statement is idempotent and a
// double record collapses). It stops at the first failing statement.
func (w *Writer) Migrate(ctx context.Context) ([]MigrationResult, error) {
	return w.migrate(ctx, false, math.MaxUint32)
}

// PlanMigrations is Migrate's dry run: it reads the server version and the
// recorded migrations (if any) and changes nothing.
func (w *Writer) PlanMigrations(ctx context.Context) ([]MigrationResult, error) {
	return w.migrate(ctx, true, math.MaxUint32)
}

// migrate applies (or plans) the migrations up to version upTo; tests
// use upTo to build a database as an older release left it.
func (w *Writer) migrate(ctx context.Context, dryRun bool, upTo uint32) ([]MigrationResult, error) {
	migs, err := storage.Migrations()
	if err != nil {
		return nil, err
	}
	verStr, err := w.ServerVersion(ctx)
	if err != nil {
		return nil, err
	}
	server, err := storage.ParseServerVersion(verStr)
	if err != nil {
		return nil, err
	}
	// Cluster mode renders the same files with ON CLUSTER, Replicated
	// engines and Distributed tables (storage.DDLParams.RenderCluster).
	params := storage.DDLParams{Database: w.cfg.Database, Cluster: w.cfg.Cluster}
	var results []MigrationResult
	render := func(m storage.Migration) ([]string, error) {
		var out []string
		for _, s := range m.Statements {
			r, err := params.RenderCluster(s)
			if err != nil {
				return nil, fmt.Errorf("render %s: %w", m.File, err)
			}
			out = append(out, r...)
		}
		return out, nil
	}
	// The bootstrap first: it creates what the record lookup reads.
	boot := migs[0]
	stmts, err := render(boot)
	if err != nil {
		return nil, err
	}
	if !dryRun {
		if err := w.exec(ctx, boot, stmts, server); err != nil {
			return nil, err
		}
	}
	recorded, err := w.recordedMigrations(ctx)
	if err != nil {
		return nil, err
	}
	st := StatusBootstrap
	if dryRun {
		st = StatusBootstrapDry
	}
	results = append(results, MigrationResult{Migration: boot, Status: st, Statements: stmts})
	if _, ok := recorded[boot.Version]; !ok && !dryRun {
		if err := w.record(ctx, boot, verStr); err != nil {
			return results, err
		}
	}

	for _, m := range migs[1:] {
		if m.Version > upTo {
			break
		}
		stmts, err := render(m)
		if err != nil {
			return results, err
		}
		res := MigrationResult{Migration: m, Statements: stmts}
		if sum, ok := recorded[m.Version]; ok {
			res.Status, res.Statements = StatusRecorded, nil
			// A text the file says it replaces is as good as the current one.
			if !m.Current(sum) {
				res.Note = "file changed since it was applied; changes are not re-applied"
				w.log.Warn("migration file changed after it was applied", "file", m.File)
			}
			results = append(results, res)
			continue
		}
		if !m.Requires.IsZero() && !server.AtLeast(m.Requires) {
			res.Status, res.Statements = StatusServerOld, nil
			res.Note = fmt.Sprintf("needs ClickHouse %s or newer, server is %s", m.Requires, verStr)
			results = append(results, res)
			if !dryRun {
				w.log.Info("migration skipped", "file", m.File, "reason", res.Note)
			}
			continue
		}
		if dryRun {
			res.Status = StatusPending
			results = append(results, res)
			continue
		}
		if m.Step != "" {
			err = w.runStep(ctx, m)
		} else {
			err = w.exec(ctx, m, stmts, server)
		}
		if err != nil {
			return results, err
		}
		if err := w.record(ctx, m, verStr); err != nil {
			return results, err
		}
		res.Status = StatusApplied
		results = append(results, res)
		w.log.Info("migration applied", "file", m.File)
	}
	return results, nil
}

func (w *Writer) exec(ctx context.Context, m storage.Migration, stmts []string, server storage.ServerVersion) error {
	for i, s := range stmts {
		what := fmt.Sprintf("migration %s statement %d", m.File, i+1)
		if w.cfg.Cluster == "" || !strings.Contains(s, "MODIFY ORDER BY") {
			if err := w.execOn(ctx, w.conn, what, s, server); err != nil {
				return err
			}
			continue
		}
		// ClickHouse 18.16's distributed DDL refuses MODIFY ORDER BY
		// ("Unsupported type of ALTER query"): the ALTER runs on each
		// shard instead, whose other replicas follow through ZooKeeper.
		local := strings.Replace(s, " ON CLUSTER "+w.cfg.Cluster, "", 1)
		for _, t := range w.targets() {
			if err := w.execOn(ctx, t.conn, what+" on "+t.label, local, server); err != nil {
				return err
			}
		}
	}
	return nil
}

// execOn runs one migration statement on conn, emulating ADD COLUMN IF
// NOT EXISTS where the server lacks it.
func (w *Writer) execOn(ctx context.Context, conn driver.Conn, what, s string, server storage.ServerVersion) error {
	if a, ok := storage.ParseAddColumns(s); ok && !server.AtLeast(storage.AddColumnIfNotExistsSince) {
		run, err := w.addColumnsPending(ctx, conn, a)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if !run {
			return nil
		}
		s = a.Plain
	}
	if err := conn.Exec(ctx, s); err != nil {
		return classify(what, err)
	}
	return nil
}

// recordedMigrations returns version → checksum of the recorded
// migrations; none when schema_migrations does not exist (a dry run on a
// fresh server).
func (w *Writer) recordedMigrations(ctx context.Context) (map[uint32]string, error) {
	out := map[uint32]string{}
	var exists uint8
	if err := w.conn.QueryRow(ctx, fmt.Sprintf("EXISTS TABLE %s.schema_migrations", w.cfg.Database)).Scan(&exists); err != nil {
		err = classify("look for schema_migrations", err)
		return nil, err
	}
	if exists == 0 {
		return out, nil
	}
	rows, err := w.conn.Query(ctx, fmt.Sprintf("SELECT version, checksum FROM %s.schema_migrations FINAL", w.cfg.Database))
	if err != nil {
		err = classify("read schema_migrations", err)
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		out[v] = sum
	}
	if err := rows.Err(); err != nil {
		err = classify("read schema_migrations", err)
		return nil, err
	}
	return out, nil
}

func (w *Writer) record(ctx context.Context, m storage.Migration, server string) error {
	// A batch, not INSERT … VALUES through Exec: over the native protocol
	// ClickHouse 18.16 waits for a data block after any INSERT.
	q := fmt.Sprintf("INSERT INTO %s.schema_migrations (version, name, checksum, server_version)", w.cfg.Database)
	err := func() error {
		batch, err := w.conn.PrepareBatch(ctx, q)
		if err != nil {
			return err
		}
		defer batch.Abort()
		if err := batch.Append(m.Version, m.Name, m.Checksum, server); err != nil {
			return err
		}
		return batch.Send()
	}()
	if err != nil {
		err = classify("record migration "+m.File, err)
		return err
	}
	return nil
}

// addColumnsPending emulates ADD COLUMN IF NOT EXISTS on a server without
// it: true when none of the columns exists (run the statement without IF
// NOT EXISTS), false when all do (it was applied), on the server conn
// reaches (in cluster mode an ON CLUSTER statement is checked on the server
// taillight migrate talks to).
func (w *Writer) addColumnsPending(ctx context.Context, conn driver.Conn, a storage.AddColumns) (bool, error) {
	rows, err := conn.Query(ctx, "SELECT name FROM system.columns WHERE database = ? AND table = ?", a.Database, a.Table)
	if err != nil {
		return false, classify("read the columns of "+a.Table, err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return false, fmt.Errorf("read the columns of %s: %w", a.Table, err)
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, classify("read the columns of "+a.Table, err)
	}
	var missing []string
	for _, c := range a.Columns {
		if !have[c] {
			missing = append(missing, c)
		}
	}
	switch len(missing) {
	case 0:
		return false, nil
	case len(a.Columns):
		return true, nil
	}
	return false, fmt.Errorf("chsink: %s.%s has some of the columns %v but not %v; add those by hand (ALTER TABLE … ADD COLUMN) and run taillight migrate again",
		a.Database, a.Table, a.Columns, missing)
}
