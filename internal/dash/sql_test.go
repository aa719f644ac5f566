package dash

import (
	"errors"
	"testing"
)

func TestCheckSQL(t *testing.T) {
	dbs := []string{"default", "system", "taillight", "other_db", "INFORMATION_SCHEMA"}
	ok := func(in, want string) {
		t.Helper()
		got, err := CheckSQL(in, "taillight", dbs)
		if err != nil {
			t.Fatalf("CheckSQL(%q): %v", in, err)
		}
		if got != want {
			t.Fatalf("CheckSQL(%q) = %q; want %q", in, got, want)
		}
	}
	bad := func(in string, want error) {
		t.Helper()
		_, err := CheckSQL(in, "taillight", dbs)
		if !errors.Is(err, want) {
			t.Fatalf("CheckSQL(%q) error = %v; want %v", in, err, want)
		}
	}
	ok("SELECT 1", "SELECT 1")
	ok("  select count() from trace_items FINAL ;; ", "select count() from trace_items FINAL")
	ok("WITH 1 AS x SELECT x", "WITH 1 AS x SELECT x")
	ok("-- a comment\n/* another /* nested */ */ SELECT 1 -- trailing", "-- a comment\n/* another /* nested */ */ SELECT 1")
	ok("(SELECT 1) UNION ALL (SELECT 2)", "(SELECT 1) UNION ALL (SELECT 2)")
	ok("SELECT taillight.trace_items.script_name FROM taillight.trace_items", "SELECT taillight.trace_items.script_name FROM taillight.trace_items")
	ok("SELECT logs.message FROM trace_items ARRAY JOIN logs", "SELECT logs.message FROM trace_items ARRAY JOIN logs")
	ok("SELECT 'system.tables; DROP TABLE x' AS s", "SELECT 'system.tables; DROP TABLE x' AS s")
	ok(`SELECT 'it\'s; x', 'a''b;' FROM t`, `SELECT 'it\'s; x', 'a''b;' FROM t`)
	ok("SELECT 1e-3, 0x1F, 1.5e+2", "SELECT 1e-3, 0x1F, 1.5e+2")
	ok("SELECT system FROM t", "SELECT system FROM t") // a column named system

	for _, s := range []string{
		"INSERT INTO trace_items SELECT * FROM trace_items",
		"DROP TABLE trace_items",
		"drop database taillight",
		"CREATE TABLE x (a UInt8) ENGINE = Memory",
		"ALTER TABLE trace_items DELETE WHERE 1",
		"SET readonly = 0",
		"KILL QUERY WHERE 1",
		"OPTIMIZE TABLE trace_items FINAL",
		"SYSTEM SHUTDOWN",
		"SHOW TABLES",
		"DESCRIBE trace_items",
		"TRUNCATE TABLE trace_items",
		"RENAME TABLE a TO b",
		"ATTACH TABLE x",
		"DETACH TABLE trace_items",
		"/* SELECT */ DROP TABLE trace_items",
		"-- SELECT\nDROP TABLE trace_items",
		"",
		" ; ",
		"EXPLAIN SELECT 1",
	} {
		bad(s, ErrNotSelect)
	}
	for _, s := range []string{
		"SELECT 1; DROP TABLE trace_items",
		"SELECT 1; SELECT 2",
		"SELECT 1;SELECT 2;",
		"SELECT 1 ; -- x\n INSERT INTO t VALUES (1)",
	} {
		bad(s, ErrMultiStatement)
	}
	for _, s := range []string{
		"SELECT * FROM system.tables",
		"SELECT * FROM SYSTEM.tables",
		"SELECT * FROM `system`.`tables`",
		`SELECT * FROM "system"."processes"`,
		"SELECT * FROM system . query_log",
		"SELECT * FROM system/* x */.users",
		"SELECT * FROM default.secrets",
		"SELECT * FROM other_db.t",
		"SELECT * FROM information_schema.tables",
		"SELECT (SELECT count() FROM system.parts)",
		"SELECT * FROM trace_items WHERE script_name IN (SELECT name FROM system.databases)",
	} {
		bad(s, ErrOtherDatabase)
	}
	for _, s := range []string{
		"SELECT 'unterminated",
		"SELECT `unterminated",
		"SELECT 1 /* unterminated",
		"SELECT * FROM `\\x73ystem`.tables",
		`SELECT * FROM "sys\tem".tables`,
	} {
		bad(s, ErrBadSQL)
	}
}

func FuzzCheckSQL(f *testing.F) {
	for _, s := range []string{"SELECT 1", "SELECT * FROM system.tables", "SELECT 'a;b'; DROP", "WITH x AS (SELECT 1) SELECT * FROM x", "/*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := CheckSQL(s, "taillight", []string{"system", "taillight", "default"})
		if err != nil {
			return
		}
		// Accepted SQL stays accepted and unchanged when checked again.
		again, err := CheckSQL(out, "taillight", []string{"system", "taillight", "default"})
		if err != nil || again != out {
			t.Fatalf("CheckSQL(%q) = %q, but checking that again gives (%q, %v)", s, out, again, err)
		}
	})
}
