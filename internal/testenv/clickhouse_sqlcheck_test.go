package testenv

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireSQLCheck returns the venv's python and sqlcheck.py, skipping (failing
// with TAILLIGHT_E2E=1) when chdb is not installed.
func requireSQLCheck(t *testing.T) (python, script string) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping chdb test in -short mode")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	python = filepath.Join(root, ".venv", "bin", "python")
	script = filepath.Join(root, "deployments", "local", "sqlcheck.py")
	if err := exec.Command(python, "-c", "import chdb").Run(); err != nil {
		msg := "chdb is not installed in " + filepath.Join(root, ".venv") + " (" + err.Error() + "): run deployments/local/install.sh chdb"
		if E2E() {
			t.Fatal("TAILLIGHT_E2E=1 but " + msg)
		}
		t.Skip("skipping: " + msg)
	}
	return python, script
}

// sqlcheck runs sqlcheck.py on a repo root made of files and returns its
// output and exit code.
func sqlcheck(t *testing.T, files map[string]string) (string, int) {
	t.Helper()
	python, script := requireSQLCheck(t)
	root := t.TempDir()
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	cmd := exec.Command(python, script, "--root", root)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	}
	t.Fatalf("run sqlcheck.py: %v\n%s", err, out.String())
	return "", 0
}

const sqlcheckGoodDDL = `-- a table
CREATE DATABASE IF NOT EXISTS {{database}} {{on_cluster}};
CREATE TABLE IF NOT EXISTS {{database}}.t {{on_cluster}}
(
    a  UInt64,
    s  String,
    at DateTime('UTC')
)
ENGINE = {{replicated}}MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY a;
`

const sqlcheckGoodQuery = `-- title: rows
-- params: from DateTime, s String, limit UInt32
SELECT count() AS n, max(a)
FROM {{database}}.t
WHERE {{fragment:filter}}
LIMIT {limit:UInt32}
`

// withQueryFragments adds the fragments sqlcheckGoodQuery uses to files:
// one with a comment line, a placeholder and a fragment of its own.
func withQueryFragments(files map[string]string) map[string]string {
	files["storage/queries/fragments/filter.sql"] = "-- the range and the s filter\nat >= {from:DateTime}\n    AND {{fragment:s_filter}}\n"
	files["storage/queries/fragments/s_filter.sql"] = "({s:String} = '' OR s = {s:String})\n"
	return files
}

func TestSQLCheckPasses(t *testing.T) {
	out, code := sqlcheck(t, withQueryFragments(map[string]string{
		"storage/ddl/000_base.sql":  sqlcheckGoodDDL,
		"storage/ddl/001_new.sql":   "-- requires: 99.1\nALTER TABLE {{database}}.t MODIFY COLUMN s LowCardinality(String);\n",
		"storage/queries/rows.sql":  sqlcheckGoodQuery,
		"storage/queries/other.txt": "not a query",
	}))
	if code != 0 {
		t.Fatalf("exit %d; want 0:\n%s", code, out)
	}
	for _, want := range []string{
		"ok    storage/ddl/000_base.sql\n",
		"ok    storage/ddl/000_base.sql (rerun)\n",
		"ok    storage/ddl/000_base.sql (cluster syntax)\n",
		"skip  storage/ddl/001_new.sql: requires 99.1",
		"ok    storage/queries/rows.sql\n",
		"ok    storage/queries/rows.sql (sample rows)\n",
		"\n5 passed, 0 failed, 1 skipped\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSQLCheckFails(t *testing.T) {
	f := func(name string, files map[string]string, want ...string) {
		t.Helper()
		out, code := sqlcheck(t, files)
		if code != 1 {
			t.Errorf("%s: exit %d; want 1:\n%s", name, code, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", name, w, out)
			}
		}
	}
	f("no ddl dir", map[string]string{"storage/queries/rows.sql": sqlcheckGoodQuery},
		"FAIL  storage/ddl: directory not found")
	f("empty ddl dir", map[string]string{"storage/ddl/README": "x"},
		"FAIL  storage/ddl: no *.sql files", "0 queries (storage/queries not present)", "\n0 passed, 1 failed\n")
	f("bad ddl", map[string]string{
		"storage/ddl/000_base.sql": sqlcheckGoodDDL,
		"storage/ddl/001_bad.sql":  "CREATE TABLE IF NOT EXISTS {{database}}.u (a UInt64) ENGINE = NoSuchEngine;\n",
	}, "FAIL  storage/ddl/001_bad.sql: statement 1", "NoSuchEngine", "\n4 passed, 1 failed\n")
	f("not rerunnable", map[string]string{
		"storage/ddl/000_base.sql": "CREATE DATABASE {{database}};\n",
	}, "FAIL  storage/ddl/000_base.sql (rerun): statement 1 is not safe to run twice")
	f("unknown placeholder", map[string]string{
		"storage/ddl/000_base.sql": sqlcheckGoodDDL,
		"storage/ddl/001_x.sql":    "CREATE TABLE IF NOT EXISTS {{db}}.v (a UInt8) ENGINE = Memory;\n",
	}, "FAIL  storage/ddl/001_x.sql: unknown placeholder {{db}}")
	f("bad name", map[string]string{"storage/ddl/base.sql": sqlcheckGoodDDL},
		"FAIL  storage/ddl/base.sql: name is not NNN_name.sql")
	f("bad query", withQueryFragments(map[string]string{
		"storage/ddl/000_base.sql":       sqlcheckGoodDDL,
		"storage/queries/bad.sql":        "-- params:\nSELECT nosuch FROM {{database}}.t\n",
		"storage/queries/undeclared.sql": "-- params:\nSELECT {x:UInt32} FROM {{database}}.t\n",
		"storage/queries/nofragment.sql": "-- params:\nSELECT 1 FROM {{database}}.t WHERE {{fragment:nosuch}}\n",
		"storage/queries/rows.sql":       sqlcheckGoodQuery,
	}), "FAIL  storage/queries/bad.sql: filters empty", "nosuch",
		"FAIL  storage/queries/undeclared.sql: could not run: placeholder {x:UInt32} is not in the params header",
		"FAIL  storage/queries/nofragment.sql: could not run: no fragment ",
		"ok    storage/queries/rows.sql\n")
}

// TestSQLCheckRepo runs the check on the repository's own DDL and queries,
// as make test-sql does.
func TestSQLCheckRepo(t *testing.T) {
	python, script := requireSQLCheck(t)
	out, err := exec.Command(python, script).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlcheck.py on the repo: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatalf("no closing line:\n%s", out)
	}
}
