#!/usr/bin/env python3
"""Run taillight's SQL on a current ClickHouse engine, in-process (chdb).

taillight's DDL and saved queries are tested for real on ClickHouse 18.16 (the
oldest target, Debian's package). This check proves the same SQL on a current
release, so nothing taillight ships works only on the old server:

  1. every DDL file storage/ddl/NNN_name.sql, in order, its {{fragment:NAME}}
     placeholders expanded from storage/ddl/fragments/NAME.sql and the others
     rendered for a single server ({{database}} = a test database,
     {{on_cluster}} and {{replicated}} empty), exactly as `taillight migrate`
     applies them. A file whose "-- requires: MAJOR.MINOR" marker (in its
     leading comment block) names a newer release than chdb's engine is
     skipped and reported;
  2. the whole DDL a second time: every statement must be safe to rerun;
  3. each DDL statement rendered for cluster mode (ON CLUSTER, Replicated*
     engines) through formatQuery(): parsed, not run (no cluster here);
  4. every saved query storage/queries/NAME.sql (its {{fragment:NAME}}
     placeholders expanded from storage/queries/fragments/NAME.sql, then its
     {{window:NAME}} forms from storage/windows/NAME.sql), against the tables
     the DDL created, first empty and then filled with deterministic random rows
     (generateRandom with a fixed seed, so a failure reproduces); each time
     twice, with its String filters empty and set.

File conventions are those of storage/ddl.go and storage/queries.go: DDL
statements end with ';', '--' comments only, placeholders {{database}},
{{on_cluster}}, {{replicated}}; a saved query is one statement after a
"-- key: value" header whose "-- params: name Type, ..." line declares its
{name:Type} placeholders (DateTime, UInt32, UInt64, String). They are rendered as
storage.RenderQuery renders them (literals, since 18.16 has no server-side
query parameters): DateTime -> toDateTime(unix seconds) spanning the whole
DateTime range, UInt32 -> 60 for "step", else 100, UInt64 -> 100,
String -> '' or 'a'. An
unknown {{...}} placeholder, an undeclared {name:Type} or an unknown type is
a failure naming the file ("could not run"): extend this script when the Go
side gains one.

A missing or empty storage/ddl is a failure (there is then nothing to prove,
and the DDL is part of the repo); a missing or empty storage/queries is
reported as "0 queries" and is not.

Output: one line per check (ok / FAIL / skip), the closing line
"N passed, M failed[, K skipped]", exit status 1 on any failure, 2 when chdb
is missing (run deployments/local/install.sh chdb).

Usage: .venv/bin/python deployments/local/sqlcheck.py [--root DIR] [-v]
"""

import argparse
import os
import re
import sys
import tempfile

TEST_DATABASE = "taillight_sqlcheck"
SAMPLE_ROWS = 200
SAMPLE_SEED = 20181216  # any fixed value: the same rows every run

FILE_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
REQUIRES = re.compile(r"^--\s*requires:\s*(\S+)\s*$")
PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")


def placeholders(cluster):
    """The values of the known placeholders, for one server or a cluster."""
    if cluster:
        return {
            "{{database}}": TEST_DATABASE,
            "{{on_cluster}}": "ON CLUSTER sqlcheck_cluster",
            "{{replicated}}": "Replicated",
        }
    return {"{{database}}": TEST_DATABASE, "{{on_cluster}}": "", "{{replicated}}": ""}


def split_statements(text):
    """Remove '--' comments and split at ';', respecting quotes (as storage.SplitStatements)."""
    out, cur, quote, i = [], [], None, 0
    while i < len(text):
        c = text[i]
        if quote:
            cur.append(c)
            if c == "\\" and i + 1 < len(text):
                i += 1
                cur.append(text[i])
            elif c == quote:
                quote = None
        elif c in "'\"`":
            quote = c
            cur.append(c)
        elif text.startswith("--", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            cur.append("\n")
        elif c == ";":
            s = "".join(cur).strip()
            if s:
                out.append(s)
            cur = []
        else:
            cur.append(c)
        i += 1
    s = "".join(cur).strip()
    if s:
        out.append(s)
    return out


def leading_comments(text):
    """The lines of text's leading comment block, stripped (blank lines skipped)."""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if not line.startswith("--"):
            return
        yield line


def requires_of(text):
    """The version named by a '-- requires:' line in the leading comment block, or None."""
    for line in leading_comments(text):
        m = REQUIRES.match(line)
        if m:
            return m.group(1)
    return None


def parse_version(s):
    parts = s.strip().split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        raise ValueError("version %r: want MAJOR.MINOR[.PATCH...]" % s)
    return tuple(int(p) for p in parts[:3])


def render(stmt, values):
    unknown = sorted(set(p for p in PLACEHOLDER.findall(stmt) if p not in values))
    if unknown:
        raise ValueError("unknown placeholder %s (known: %s)" % (", ".join(unknown), ", ".join(sorted(values))))
    for k, v in values.items():
        stmt = stmt.replace(k, v)
    return stmt


QUERY_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*):([A-Za-z0-9]+)\}")
PARAMS_HEADER = re.compile(r"^--\s*params:\s*(.*?)\s*$")


WINDOW = re.compile(r"\{\{window:([a-z0-9_]+)\}\}")
FRAGMENT = re.compile(r"\{\{fragment:([a-z0-9_]+)\}\}")


def sql_text(path, what):
    """The file at path without its comment lines, trimmed; what names it in the error."""
    if not os.path.isfile(path):
        raise ValueError("no %s %s" % (what, path))
    with open(path, encoding="utf-8") as fh:
        return "".join(l for l in fh if not l.strip().startswith("--")).strip()


def expand_fragments(text, fragment_dir, outer=()):
    """Replace {{fragment:NAME}} with fragment_dir/NAME.sql (its own
    fragments expanded, comments removed), as storage does for the saved
    queries and the DDL."""
    def sub(m):
        name = m.group(1)
        if name in outer:
            raise ValueError("fragment %r uses itself (via %s)" % (name, ", ".join(outer)))
        body = sql_text(os.path.join(fragment_dir, name + ".sql"), "fragment")
        return expand_fragments(body, fragment_dir, outer + (name,))
    return FRAGMENT.sub(sub, text)


def expand_windows(text, window_dir):
    """Replace {{window:NAME}} with storage/windows/NAME.sql as a subquery
    (comments removed), as storage.ParseQuery does."""
    return WINDOW.sub(lambda m: "(\n" + sql_text(os.path.join(window_dir, m.group(1) + ".sql"), "window form") + "\n)", text)


def query_params(text):
    """The {name: Type} declared by a saved query's "-- params:" header line."""
    params = {}
    for line in leading_comments(text):
        m = PARAMS_HEADER.match(line)
        if not m:
            continue
        for decl in m.group(1).split(","):
            decl = decl.strip()
            if not decl:
                continue
            parts = decl.split()
            if len(parts) != 2:
                raise ValueError("param %r is not 'name Type'" % decl)
            params[parts[0]] = parts[1]
    return params


def param_literal(name, typ, filters_set):
    if typ == "DateTime":
        # The whole DateTime range, so the sample rows are all in it.
        return "toDateTime(%d)" % (0 if name in ("from", "start", "since") or name.startswith("from") else 4294967295)
    if typ == "UInt32":
        return "60" if name == "step" else "100"
    if typ == "UInt64":
        return "100"
    if typ == "String":
        return quote_string("a" if filters_set else "")
    raise ValueError("param %s: type %r: want DateTime, UInt32, UInt64 or String" % (name, typ))


def render_query(stmt, params, filters_set):
    """Render a saved query's {name:Type} placeholders as storage.RenderQuery does."""
    def sub(m):
        name, typ = m.group(1), m.group(2)
        if name not in params:
            raise ValueError("placeholder %s is not in the params header" % m.group(0))
        if params[name] != typ:
            raise ValueError("placeholder %s: declared as %s" % (m.group(0), params[name]))
        return param_literal(name, typ, filters_set)
    return render(QUERY_PARAM.sub(sub, stmt), {"{{database}}": TEST_DATABASE})


def first_line(msg):
    msg = str(msg).strip()
    return msg.splitlines()[0] if msg else "(no message)"


def head(stmt, n=80):
    s = " ".join(stmt.split())
    return s if len(s) <= n else s[: n - 3] + "..."


def quote_string(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Check:
    def __init__(self, verbose):
        self.passed = self.failed = self.skipped = 0
        self.verbose = verbose

    def ok(self, what, detail=""):
        self.passed += 1
        print("ok    %s%s" % (what, (" (" + detail + ")") if detail and self.verbose else ""))

    def fail(self, what, why):
        self.failed += 1
        print("FAIL  %s: %s" % (what, why))

    def skip(self, what, why):
        self.skipped += 1
        print("skip  %s: %s" % (what, why))


def run_statements(sess, stmts):
    """Run stmts; return None or (index, statement, error)."""
    for i, s in enumerate(stmts):
        try:
            sess.query(s, "Null")
        except Exception as e:  # chdb raises its own error types
            return i, s, e
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--root", default=os.path.normpath(os.path.join(here, "..", "..")), help="the repo root (default: two levels above this script)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print what each check ran")
    args = ap.parse_args()

    try:
        import chdb
        from chdb import session
    except ImportError as e:
        print("sqlcheck: chdb is not installed (%s): run deployments/local/install.sh chdb, then .venv/bin/python %s" % (e, sys.argv[0]), file=sys.stderr)
        return 2

    ddl_dir = os.path.join(args.root, "storage", "ddl")
    query_dir = os.path.join(args.root, "storage", "queries")
    window_dir = os.path.join(args.root, "storage", "windows")
    fragment_dir = os.path.join(query_dir, "fragments")
    ddl_fragment_dir = os.path.join(ddl_dir, "fragments")
    check = Check(args.verbose)

    with tempfile.TemporaryDirectory(prefix="taillight-sqlcheck-") as tmp:
        sess = session.Session(tmp)
        try:
            engine = sess.query("SELECT version()", "TSV").bytes().decode().strip()
        except Exception as e:
            print("sqlcheck: chdb %s cannot run a query: %s" % (getattr(chdb, "__version__", "?"), first_line(e)), file=sys.stderr)
            return 2
        engine_v = parse_version(engine)
        print("sqlcheck: ClickHouse %s (chdb %s), database %s" % (engine, getattr(chdb, "__version__", "?"), TEST_DATABASE))

        # 1. DDL, in order.
        if not os.path.isdir(ddl_dir):
            check.fail("storage/ddl", "directory not found under %s: there is no DDL to check" % args.root)
            files = []
        else:
            files = sorted(f for f in os.listdir(ddl_dir) if f.endswith(".sql"))
            if not files:
                check.fail("storage/ddl", "no *.sql files: there is no DDL to check")
        applied = []  # rendered statements of the files that ran, in order
        cluster = []  # (file, rendered-for-cluster statements)
        seen_versions = {}
        for f in files:
            what = "storage/ddl/" + f
            m = FILE_NAME.match(f)
            if not m:
                check.fail(what, "name is not NNN_name.sql")
                continue
            if m.group(1) in seen_versions:
                check.fail(what, "shares version %s with %s" % (m.group(1), seen_versions[m.group(1)]))
                continue
            seen_versions[m.group(1)] = f
            with open(os.path.join(ddl_dir, f), encoding="utf-8") as fh:
                text = fh.read()
            try:
                text = expand_fragments(text, ddl_fragment_dir)
                req = requires_of(text)
                if req and engine_v < parse_version(req):
                    check.skip(what, "requires %s; engine is %s" % (req, engine))
                    continue
                raw = split_statements(text)
                if not raw:
                    raise ValueError("no statements")
                stmts = [render(s, placeholders(False)) for s in raw]
                cluster.append((f, [render(s, placeholders(True)) for s in raw]))
            except ValueError as e:
                check.fail(what, str(e))
                continue
            bad = run_statements(sess, stmts)
            if bad:
                i, s, e = bad
                check.fail(what, "statement %d (%s): %s" % (i + 1, head(s), first_line(e)))
                continue
            applied.append((f, stmts))
            check.ok(what, "%d statements" % len(stmts))

        # 2. The same DDL again: migrations rerun after an interruption.
        for f, stmts in applied:
            what = "storage/ddl/%s (rerun)" % f
            bad = run_statements(sess, stmts)
            if bad:
                i, s, e = bad
                check.fail(what, "statement %d is not safe to run twice (%s): %s" % (i + 1, head(s), first_line(e)))
            else:
                check.ok(what)

        # 3. Cluster mode parses.
        for f, stmts in cluster:
            what = "storage/ddl/%s (cluster syntax)" % f
            for i, s in enumerate(stmts):
                try:
                    sess.query("SELECT formatQuery(%s)" % quote_string(s), "Null")
                except Exception as e:
                    check.fail(what, "statement %d (%s): %s" % (i + 1, head(s), first_line(e)))
                    break
            else:
                check.ok(what)

        # 4. Saved queries, on empty tables and then on sample rows.
        queries = []
        if os.path.isdir(query_dir):
            queries = sorted(f for f in os.listdir(query_dir) if f.endswith(".sql"))
        print("sqlcheck: %d DDL files, %d queries%s" % (len(files), len(queries), "" if os.path.isdir(query_dir) else " (storage/queries not present)"))
        if queries:
            try:
                sess.query("USE " + TEST_DATABASE, "Null")
            except Exception as e:
                check.fail("queries", "USE %s: %s (did the DDL run?)" % (TEST_DATABASE, first_line(e)))
                queries = []
        rendered = []
        for f in queries:
            what = "storage/queries/" + f
            with open(os.path.join(query_dir, f), encoding="utf-8") as fh:
                text = fh.read()
            try:
                params = query_params(text)
                raw = [expand_windows(expand_fragments(s, fragment_dir), window_dir) for s in split_statements(text)]
                if not raw:
                    raise ValueError("no statements")
                # With every String filter empty, then set.
                stmts = [render_query(s, params, fs) for fs in (False, True) for s in raw]
            except ValueError as e:
                check.fail(what, "could not run: %s" % e)
                continue
            bad = run_statements(sess, stmts)
            if bad:
                i, s, e = bad
                check.fail(what, "%s (%s): %s" % ("filters set" if i >= len(raw) else "filters empty", head(s), first_line(e)))
                continue
            rendered.append((f, raw, stmts))
            check.ok(what, "empty tables")
        if rendered:
            fill_sample_rows(sess, check)
            for f, raw, stmts in rendered:
                what = "storage/queries/%s (sample rows)" % f
                bad = run_statements(sess, stmts)
                if bad:
                    i, s, e = bad
                    check.fail(what, "%s (%s): %s" % ("filters set" if i >= len(raw) else "filters empty", head(s), first_line(e)))
                else:
                    check.ok(what)
        sess.close()

    line = "%d passed, %d failed" % (check.passed, check.failed)
    if check.skipped:
        line += ", %d skipped" % check.skipped
    print(line)
    return 1 if check.failed else 0


SAMPLE_DAY = 1767225600  # 2026-01-01 00:00:00 UTC: sample times fall in this day


def sample_expr(name, typ):
    """A column of generateRandom's output, with times kept within SAMPLE_DAY
    (a monthly-partitioned table then gets one partition, as in real life)."""
    base = typ
    for wrapper in ("LowCardinality(", "Nullable("):
        if base.startswith(wrapper):
            base = base[len(wrapper):-1]
    col = "`%s`" % name
    if base.startswith("DateTime"):
        return "toDateTime(%d + toUInt32(%s) %% 86400, 'UTC') AS %s" % (SAMPLE_DAY, col, col)
    if name.endswith("_ts_ms") and base in ("UInt64", "Int64"):
        return "%d + %s %% 86400000 AS %s" % (SAMPLE_DAY * 1000, col, col)
    return col


def fill_sample_rows(sess, check):
    """Insert SAMPLE_ROWS deterministic random rows into every MergeTree table;
    columns with a DEFAULT are left to the server, as taillight's inserts do."""
    tables = sess.query(
        "SELECT name FROM system.tables WHERE database = %s AND engine LIKE '%%MergeTree' ORDER BY name" % quote_string(TEST_DATABASE),
        "TSV",
    ).bytes().decode().split()
    for t in tables:
        cols = sess.query(
            "SELECT name, type FROM system.columns WHERE database = %s AND table = %s AND default_kind = '' ORDER BY position"
            % (quote_string(TEST_DATABASE), quote_string(t)),
            "TSV",
        ).bytes().decode()
        pairs = [line.split("\t", 1) for line in cols.splitlines() if line]
        # TSV escapes quotes in type names (DateTime(\'UTC\')); the structure string wants them plain.
        structure = ", ".join("`%s` %s" % (n, ty.replace("\\'", "'")) for n, ty in pairs)
        names = ", ".join("`%s`" % n for n, _ in pairs)
        exprs = ", ".join(sample_expr(n, ty.replace("\\'", "'")) for n, ty in pairs)
        q = "INSERT INTO %s.`%s` (%s) SELECT %s FROM generateRandom(%s, %d, 16, 3) LIMIT %d" % (
            TEST_DATABASE, t, names, exprs, quote_string(structure), SAMPLE_SEED, SAMPLE_ROWS)
        try:
            sess.query(q, "Null")
        except Exception as e:
            check.fail("sample rows for %s.%s" % (TEST_DATABASE, t), first_line(e))


if __name__ == "__main__":
    sys.exit(main())
