package storage

import (
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
