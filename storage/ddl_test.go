package storage

import (
	"embed"
	"io/fs"
	"path"
	"reflect"
	"strings"
	"testing"
)

func TestMigrations(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 4 {
		t.Fatalf("got %d migrations; want at least 4", len(ms))
	}
	for i, m := range ms {
		if m.Version != uint32(i) {
			t.Errorf("migration %d is %s; versions must be contiguous from 000", i, m.File)
		}
		for _, s := range m.Statements {
			if strings.Contains(s, "--") {
				t.Errorf("%s: comment left in statement %q", m.File, s)
			}
			if !strings.Contains(s, PlaceholderDatabase) {
				t.Errorf("%s: statement does not name {{database}}: %q", m.File, s)
			}
			// Rerunnable: a CREATE must not fail when its object exists.
			if strings.HasPrefix(s, "CREATE") && !strings.HasPrefix(s, "CREATE DATABASE IF NOT EXISTS") &&
				!strings.HasPrefix(s, "CREATE TABLE IF NOT EXISTS") && !strings.HasPrefix(s, "CREATE VIEW IF NOT EXISTS") &&
				!strings.HasPrefix(s, "CREATE MATERIALIZED VIEW IF NOT EXISTS") {
				t.Errorf("%s: CREATE without IF NOT EXISTS: %q", m.File, s)
			}
			// Cluster mode needs every statement to take ON CLUSTER.
			if !strings.Contains(s, PlaceholderOnCluster) {
				t.Errorf("%s: statement lacks {{on_cluster}}: %q", m.File, s)
			}
		}
	}
	if ms[0].Name != "schema_migrations" || !ms[0].Requires.IsZero() {
		t.Errorf("000 = %+v; want the schema_migrations bootstrap with no requirement", ms[0])
	}
	var gated bool
	for _, m := range ms {
		if !m.Requires.IsZero() {
			gated = true
			if (ServerVersion{18, 16, 1}).AtLeast(m.Requires) {
				t.Errorf("%s requires %s, which 18.16 satisfies; gated files are for newer servers", m.File, m.Requires)
			}
		}
	}
	if !gated {
		t.Error("no migration carries a -- requires: marker")
	}
}

func TestParseMigration(t *testing.T) {
	f := func(name, text string, wantErr string, want Migration) {
		t.Helper()
		got, err := ParseMigration(name, text)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("ParseMigration(%q) error = %v; want %q", name, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseMigration(%q): %v", name, err)
		}
		got.Checksum = ""
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseMigration(%q) = %+v; want %+v", name, got, want)
		}
	}
	f("007_x.sql", "-- hi\n-- requires: 19.3\nCREATE TABLE {{database}}.a (x UInt8) ENGINE = Memory;\n", "",
		Migration{Version: 7, Name: "x", File: "007_x.sql", Requires: ServerVersion{19, 3, 0},
			Statements: []string{"CREATE TABLE {{database}}.a (x UInt8) ENGINE = Memory"}})
	// A requires marker after the first statement is only a comment.
	f("008_y.sql", "SELECT 1;\n-- requires: 19.3\nSELECT 2", "",
		Migration{Version: 8, Name: "y", File: "008_y.sql", Statements: []string{"SELECT 1", "SELECT 2"}})
	f("8_y.sql", "SELECT 1", "NNN_name.sql", Migration{})
	f("009_z.sql", "-- only a comment\n", "no statements", Migration{})
	f("010_z.sql", "SELECT {{nope}}", "unknown placeholder", Migration{})
	f("011_z.sql", "-- requires: new\nSELECT 1", "requires", Migration{})
	// Earlier texts the file stands in for, by their checksums.
	a, b := strings.Repeat("a", 64), strings.Repeat("0", 64)
	f("012_r.sql", "-- replaces: "+a+"\n--replaces:"+b+"\nSELECT 1;\n-- replaces: "+strings.Repeat("1", 64), "",
		Migration{Version: 12, Name: "r", File: "012_r.sql", Statements: []string{"SELECT 1"}, Replaces: []string{a, b}})
	f("013_r.sql", "-- replaces: "+strings.ToUpper(a)+"\nSELECT 1", "replaces", Migration{})
	f("014_r.sql", "-- replaces: abc\nSELECT 1", "replaces", Migration{})
	f("015_r.sql", "-- replaces:\nSELECT 1", "replaces", Migration{})
}

func TestMigrationCurrent(t *testing.T) {
	m, err := ParseMigration("003_v.sql", "-- replaces: "+strings.Repeat("b", 64)+"\nSELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	f := func(sum string, want bool) {
		t.Helper()
		if got := m.Current(sum); got != want {
			t.Fatalf("Current(%q) = %v; want %v", sum, got, want)
		}
	}
	f(m.Checksum, true)
	f(strings.Repeat("b", 64), true)
	f(strings.Repeat("c", 64), false)
	f("", false)
}

func TestSplitStatements(t *testing.T) {
	f := func(in string, want ...string) {
		t.Helper()
		got := SplitStatements(in)
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("SplitStatements(%q) = %q; want %q", in, got, want)
		}
	}
	f("")
	f(" ; ;\n")
	f("SELECT 1", "SELECT 1")
	f("SELECT 1;SELECT 2;", "SELECT 1", "SELECT 2")
	f("SELECT ';' -- x;y\n; SELECT 2", "SELECT ';'", "SELECT 2")
	f("SELECT 'a\\'b;--' ; SELECT `c;d`", "SELECT 'a\\'b;--'", "SELECT `c;d`")
	f("-- a;\nSELECT 1 -- b\n, 2;", "SELECT 1 \n, 2")
}

func TestRender(t *testing.T) {
	stmt := "CREATE TABLE IF NOT EXISTS {{database}}.t {{on_cluster}} (x UInt8) ENGINE = {{replicated}}MergeTree ORDER BY x"
	f := func(p DDLParams, want, wantErr string) {
		t.Helper()
		got, err := p.Render(stmt)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("Render(%+v) error = %v; want %q", p, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Fatalf("Render(%+v) = %q, %v; want %q", p, got, err, want)
		}
	}
	f(DDLParams{Database: "taillight"}, "CREATE TABLE IF NOT EXISTS taillight.t (x UInt8) ENGINE = MergeTree ORDER BY x", "")
	f(DDLParams{Database: "tl", Cluster: "c1", Replicated: true},
		"CREATE TABLE IF NOT EXISTS tl.t ON CLUSTER c1 (x UInt8) ENGINE = ReplicatedMergeTree ORDER BY x", "")
	f(DDLParams{Database: "a-b"}, "", "not a plain identifier")
	f(DDLParams{Database: ""}, "", "not a plain identifier")
	f(DDLParams{Database: "a", Cluster: "x y"}, "", "not a plain identifier")
}

func TestServerVersion(t *testing.T) {
	f := func(s string, want ServerVersion, wantErr bool) {
		t.Helper()
		got, err := ParseServerVersion(s)
		if (err != nil) != wantErr || got != want {
			t.Fatalf("ParseServerVersion(%q) = %v, %v; want %v, error %v", s, got, err, want, wantErr)
		}
	}
	f("18.16.1", ServerVersion{18, 16, 1}, false)
	f("24.8.4.13", ServerVersion{24, 8, 4}, false)
	f("20.3", ServerVersion{20, 3, 0}, false)
	f("20", ServerVersion{}, true)
	f("x.1", ServerVersion{}, true)

	at := func(a, b ServerVersion, want bool) {
		t.Helper()
		if got := a.AtLeast(b); got != want {
			t.Fatalf("%v.AtLeast(%v) = %v; want %v", a, b, got, want)
		}
	}
	at(ServerVersion{18, 16, 1}, ServerVersion{20, 3, 0}, false)
	at(ServerVersion{20, 3, 0}, ServerVersion{20, 3, 0}, true)
	at(ServerVersion{20, 2, 9}, ServerVersion{20, 3, 0}, false)
	at(ServerVersion{21, 1, 0}, ServerVersion{20, 3, 0}, true)
	at(ServerVersion{20, 3, 1}, ServerVersion{20, 3, 2}, false)
}

func TestParseAddColumns(t *testing.T) {
	a, ok := ParseAddColumns("ALTER TABLE tl.rollup_minutes_local ON CLUSTER c1\n    ADD COLUMN IF NOT EXISTS dispatch_namespace String,\n    ADD COLUMN IF NOT EXISTS worker_id String,\n    MODIFY ORDER BY (kind, worker_id)")
	want := AddColumns{Database: "tl", Table: "rollup_minutes_local", Columns: []string{"dispatch_namespace", "worker_id"},
		Plain: "ALTER TABLE tl.rollup_minutes_local ON CLUSTER c1\n    ADD COLUMN dispatch_namespace String,\n    ADD COLUMN worker_id String,\n    MODIFY ORDER BY (kind, worker_id)"}
	if !ok || !reflect.DeepEqual(a, want) {
		t.Fatalf("ParseAddColumns = %+v, %v; want %+v", a, ok, want)
	}
	for _, s := range []string{
		"ALTER TABLE tl.t MODIFY COLUMN a LowCardinality(String)",
		"ALTER TABLE tl.t ADD COLUMN a String",
		"CREATE VIEW tl.v AS SELECT 'ADD COLUMN IF NOT EXISTS x' AS a",
	} {
		if a, ok := ParseAddColumns(s); ok {
			t.Errorf("ParseAddColumns(%q) = %+v; want no match", s, a)
		}
	}
	// Every ADD COLUMN of the migrations says IF NOT EXISTS: 18.16 cannot
	// rerun a bare one.
	migs, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migs {
		for _, s := range m.Statements {
			if strings.Contains(s, "ADD COLUMN") && strings.Count(s, "ADD COLUMN") != strings.Count(s, "ADD COLUMN IF NOT EXISTS") {
				t.Errorf("%s: ADD COLUMN without IF NOT EXISTS: %s", m.File, s)
			}
		}
	}
}

// A database that applied the migrations as an earlier release shipped them
// is not told that a file changed: each file is that text, or replaces it.
func TestMigrationsReplaceShipped(t *testing.T) {
	shipped := map[string]string{ // as shipped at 8cc4197
		"000_schema_migrations.sql":   "eb88f3e67afa452b2e0330d0dd0af67772b552bdc0e895a009a8a3ac9a016806",
		"001_trace_items.sql":         "ae8626620ddc93f73bf002b189f8ed4edef07db964ada577b4fcf10a941ceb35",
		"002_rollup_blocks.sql":       "7642cf7005f1491d2d33166dcd90725f1d1124e67cf9c0a24883f379ac03d5cc",
		"003_views.sql":               "8aa9c097d7dac70247ac2e59cbb33ee271de608dd60837d5b89f72e49e01430c",
		"004_trace_items_compact.sql": "bde2b29338bfe092dfae698ef864a6f3a49fc763553ea37b0e96d7b5ce437bea",
		"005_read_path_tables.sql":    "87363b2dcfac600bd866b482bfd14e9594a8e0b470f349f6f377449a55fa4f4f",
		"006_read_path_swap.sql":      "c3dd85a072834260624467115a93b202a647bd716e5bd7067cf30f37563b1ac5",
		"007_read_path_views.sql":     "1b67b5630b36cd84664298b74155cb1a81e95cac1f923b7371835e7052620874",
		"008_read_path_compact.sql":   "721d844b76b4717a12a95f7c828755d36983203804325dcc72e25b43629ccec6",
		"009_worker_id.sql":           "6547ca964bace5215ecfccdbb894ee6239aab20d95a9355f8b8caa9da2e81aa9",
		"010_kafka_logs.sql":          "5b97e721caa23c0f58863cd17d02b49fb19f0302b8cc20aed2009aa3ee1761f6",
	}
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if sum, ok := shipped[m.File]; ok && !m.Current(sum) {
			t.Errorf("%s changed since it shipped as %s; add -- replaces: %s if the new text ends every database in the same schema", m.File, sum, sum)
		}
	}
}

// Every DDL fragment is used, by a migration or by another fragment: an
// unused one would go unchecked. (TestMigrationsReplaceShipped shows that
// taking a column list out into a fragment kept each file's checksum.)
func TestDDLFragments(t *testing.T) {
	var all strings.Builder
	read := func(fsys embed.FS, glob string) []string {
		paths, err := fs.Glob(fsys, glob)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			b, _ := fsys.ReadFile(p)
			all.Write(b)
		}
		return paths
	}
	read(ddlFiles, "ddl/*.sql")
	fragments := read(ddlFragmentFiles, "ddl/fragments/*.sql")
	if len(fragments) == 0 {
		t.Fatal("no fragments")
	}
	for _, p := range fragments {
		name := strings.TrimSuffix(path.Base(p), ".sql")
		if !strings.Contains(all.String(), "{{fragment:"+name+"}}") {
			t.Errorf("fragment %s is used by no migration", p)
		}
	}
	if _, err := ParseMigration("011_x.sql", "CREATE TABLE {{database}}.t ({{fragment:nosuch}}) ENGINE = Memory"); err == nil ||
		!strings.Contains(err.Error(), `ddl file 011_x.sql: unknown fragment "nosuch" (no storage/ddl/fragments/nosuch.sql)`) {
		t.Fatalf("ParseMigration with an unknown fragment: err = %v", err)
	}
}
