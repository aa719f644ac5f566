#!/usr/bin/env python3
"""What ingesting trace_items rows costs ClickHouse: a current engine in-process (chdb), or a server.

`taillight bench` measures ClickHouse 18.16, the oldest server taillight
supports and the only one this machine can run. Newer servers have column
codecs and LowCardinality, which migration 008 switches trace_items to where
`version()` allows. This script measures what that layout costs to ingest on
a current engine, against the 18.16 layout on the same engine:

  1. a fresh chdb session gets taillight's DDL (storage/ddl, rendered as
     sqlcheck.py renders it), without 008 for --layout 18.16, with it for
     --layout current;
  2. each Native file of --chunks (sorted by name) is one INSERT into
     trace_items, as one group commit is (its rows read from the file with
     file(..., Native), into the columns the file names);
  3. it waits until no merge runs and the active parts have not changed for a
     second (at most 3 minutes), as the bench's "merges settled" does.

It prints the process CPU (user + system, every thread, merges included)
from the first INSERT until then, per million rows, and the bytes on disk
per row of trace_items's active parts.

With --server HOST:PORT and --server-pid PID it measures that server (for
example 18.16, started by clickhouse.sh) the same way instead: the tables
made by `taillight migrate` into a fresh database, each chunk sent by
clickhouse-client, the server's CPU read from /proc/PID/stat. Export the chunks from a server that
holds real rows, for example after `taillight bench -clickhouse.addr ...`:

  clickhouse-client --port P -q "SELECT <columns> FROM bench_x.trace_items
      ORDER BY kafka_offset, kafka_partition LIMIT 100000 OFFSET 0 FORMAT Native" > 00.native

Usage: .venv/bin/python deployments/local/ingestcost.py --chunks DIR --layout 18.16|current
       .venv/bin/python deployments/local/ingestcost.py --chunks DIR --server HOST:PORT --server-pid PID
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqlcheck  # noqa: E402  (the DDL rendering, shared)

DATABASE = "taillight_ingestcost"


def native_columns(path, sess=None):
    """The column names a Native file holds, in order: the INSERT's column
    list. chdb reads them, in sess when one is open (chdb has one engine)."""
    if sess is None:
        import chdb as sess
    out = sess.query("DESCRIBE TABLE file('%s', Native)" % path, "TSV").bytes().decode()
    return ", ".join("`%s`" % l.split("\t")[0] for l in out.splitlines() if l)


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def scalar(sess, q):
    return sess.query(q, "TSV").bytes().decode().strip()


class Server:
    """A running server reached with clickhouse-client, queried as a chdb session is."""

    def __init__(self, addr, pid):
        self.host, self.port = addr.rsplit(":", 1)
        self.pid = pid

    def client(self, q, stdin=None):
        return subprocess.run(["clickhouse-client", "--host", self.host, "--port", self.port, "-q", q],
                              stdin=stdin, stdout=subprocess.PIPE, check=True).stdout

    def query(self, q, fmt):
        return Result(self.client(q + (" FORMAT " + fmt if fmt != "Null" else "")))

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.pid) as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


class Result:
    """A query's output, as chdb returns it."""

    def __init__(self, b):
        self.b = b

    def bytes(self):
        return self.b


def measure_server(args, root):
    srv = Server(args.server, args.server_pid)
    subprocess.run([os.path.join(root, "bin", "taillight"), "migrate", "-clickhouse.addr", args.server,
                    "-clickhouse.database", DATABASE], check=True, stdout=subprocess.DEVNULL)
    engine = scalar(srv, "SELECT version()")
    chunks = chunk_files(args.chunks)
    cols = native_columns(chunks[0])
    try:
        start, t0 = srv.cpu_seconds(), time.monotonic()
        for c in chunks:
            with open(c, "rb") as fh:
                srv.client("INSERT INTO %s.trace_items (%s) FORMAT Native" % (DATABASE, cols), stdin=fh)
        inserted = srv.cpu_seconds() - start
        settled = settle(srv, time.monotonic() + 180)
        total = srv.cpu_seconds() - start
        report(srv, "ClickHouse %s server" % engine, len(chunks), t0, inserted, total, settled)
    finally:
        srv.client("DROP DATABASE IF EXISTS " + DATABASE)
    return 0


def chunk_files(d):
    return sorted(os.path.join(os.path.abspath(d), f) for f in os.listdir(d) if f.endswith(".native"))


def report(sess, what, n, t0, inserted, total, settled):
    rows, on_disk, parts = scalar(sess, "SELECT sum(rows), sum(bytes_on_disk), count() FROM system.parts WHERE database = '%s' AND table = 'trace_items' AND active" % DATABASE).split("\t")
    rows = int(rows)
    m = rows / 1e6
    print("%s: %d INSERTs of %d rows in %.1f s" % (what, n, rows, time.monotonic() - t0))
    print("CPU-s per million rows: %.2f until the last INSERT, %.2f merges settled%s" % (inserted / m, total / m, "" if settled else " (did not settle in 3 min)"))
    print("trace_items: %d active parts, %.1f bytes on disk per row" % (int(parts), int(on_disk) / rows))


def ddl(root, layout, engine_v):
    """The rendered DDL statements, in order."""
    ddl_dir = os.path.join(root, "storage", "ddl")
    values = sqlcheck.placeholders(False)
    values["{{database}}"] = DATABASE
    out = []
    for f in sorted(os.listdir(ddl_dir)):
        if not f.endswith(".sql"):
            continue
        with open(os.path.join(ddl_dir, f), encoding="utf-8") as fh:
            text = sqlcheck.expand_fragments(fh.read(), os.path.join(ddl_dir, "fragments"))
        req = sqlcheck.requires_of(text)
        if req and sqlcheck.parse_version(req) > engine_v:
            continue
        if layout == "18.16" and req:
            continue  # the files that need a newer server than 18.16
        out += [sqlcheck.render(s, values) for s in sqlcheck.split_statements(text)]
    return out


def settle(sess, deadline):
    """Wait until no merge runs and the active parts stay the same for 1 s."""
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        merges = int(scalar(sess, "SELECT count() FROM system.merges WHERE database = '%s'" % DATABASE))
        parts = scalar(sess, "SELECT groupArray(name) FROM (SELECT name FROM system.parts WHERE database = '%s' AND active ORDER BY name)" % DATABASE)
        if merges or parts != last:
            last, since = parts, time.monotonic()
        elif time.monotonic() - since >= 1:
            return True
        time.sleep(0.1)  # a poll interval, not a synchronisation
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--root", default=os.path.normpath(os.path.join(here, "..", "..")))
    ap.add_argument("--chunks", required=True, help="directory of Native files, one INSERT each")
    ap.add_argument("--layout", choices=["18.16", "current"], help="the DDL for chdb: without or with 008")
    ap.add_argument("--server", help="measure this server (host:port) instead of chdb")
    ap.add_argument("--server-pid", type=int, help="the server's process id, for its CPU")
    args = ap.parse_args()
    if not os.path.isdir(args.chunks) or not chunk_files(args.chunks):
        print("ingestcost: no *.native files in %s" % args.chunks, file=sys.stderr)
        return 2
    try:  # chdb reads the files' column names in both modes
        import chdb
        from chdb import session
    except ImportError as e:
        print("ingestcost: chdb is not installed (%s): run deployments/local/install.sh chdb" % e, file=sys.stderr)
        return 2
    if args.server:
        if not args.server_pid:
            ap.error("--server needs --server-pid")
        return measure_server(args, args.root)
    if not args.layout:
        ap.error("--layout is needed for chdb")
    chunks = chunk_files(args.chunks)
    with tempfile.TemporaryDirectory(prefix="taillight-ingestcost-") as tmp:
        sess = session.Session(tmp)
        engine = scalar(sess, "SELECT version()")
        for s in ddl(args.root, args.layout, sqlcheck.parse_version(engine)):
            sess.query(s, "Null")
        cols = native_columns(chunks[0], sess)
        start, t0 = cpu_seconds(), time.monotonic()
        for c in chunks:
            sess.query("INSERT INTO %s.trace_items (%s) SELECT * FROM file('%s', Native)" % (DATABASE, cols, c), "Null")
        inserted = cpu_seconds() - start
        settled = settle(sess, time.monotonic() + 180)
        total = cpu_seconds() - start
        report(sess, "ClickHouse %s (chdb %s), layout %s" % (engine, getattr(chdb, "__version__", "?"), args.layout), len(chunks), t0, inserted, total, settled)
    return 0


if __name__ == "__main__":
    sys.exit(main())
