package storage

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The ClickHouse DDL: numbered migration files storage/ddl/NNN_name.sql,
// applied in order by chsink.Migrate and recorded in schema_migrations.
//
// File conventions (deployments/local/sqlcheck.py relies on them too):
//   - plain SQL statements, each ended by ';' (';' never appears inside a
//     string literal or a comment); '--' line comments only;
//   - every statement is safe to run again (CREATE … IF NOT EXISTS, ALTER …
//     MODIFY, ALTER … ADD COLUMN IF NOT EXISTS, which chsink.Migrate
//     emulates on servers older than AddColumnIfNotExistsSince), so a
//     migration interrupted half-way is simply rerun;
//   - placeholders, substituted by DDLParams.Render: {{database}} (the
//     database name), {{on_cluster}} (empty, or ON CLUSTER `name`) and
//     {{replicated}} (empty, or Replicated, prefixed to a MergeTree engine
//     name); for a single server they are taillight, "" and "";
//   - {{fragment:NAME}}, replaced when the file is parsed by the text of
//     ddl/fragments/NAME.sql as saved queries' fragments are (comment lines
//     removed, lines after the first indented as the placeholder's line):
//     column lists that several tables share. The checksum is that of the
//     file with its fragments in place, so changing a fragment changes
//     every migration that uses it, and a file that took a list out into a
//     fragment keeps the checksum it had, byte for byte;
//   - a first-lines comment "-- requires: MAJOR.MINOR" gates the whole file
//     on the server's version(): on an older server it is skipped and not
//     recorded, so it is applied after an upgrade. Such files only make
//     tables smaller or faster (LowCardinality, codecs, TTL); nothing later
//     may depend on them;
//   - 000 is the bootstrap (the database and schema_migrations) and runs on
//     every migrate;
//   - a first-lines comment "-- replaces: SHA256" (one a line, any number)
//     names an earlier text of the same file, by the checksum that
//     schema_migrations recorded for it, that the current text stands in
//     for: a database that applied that text is not told the file changed.
//     Only for rewrites that end every database in the schema the earlier
//     text would have (such as a CREATE VIEW removed because a later
//     migration creates that view again); the line stays as long as such
//     databases may exist.

//go:embed ddl/*.sql
var ddlFiles embed.FS

//go:embed ddl/fragments/*.sql
var ddlFragmentFiles embed.FS

// Migration is one DDL file.
type Migration struct {
	Version  uint32        // NNN of the file name
	Name     string        // the file name without number and extension
	File     string        // e.g. "001_trace_items.sql"
	Requires ServerVersion // zero when any server will do
	// Step names a Go step that runs the migration instead of its
	// statements being executed one by one ("-- step: NAME"): a data move
	// that must be resumable. The statements are then the step's own.
	Step       string
	Statements []string // templated statements, comments removed
	Checksum   string   // hex SHA-256 of the file, its fragments in place
	// Replaces holds the checksums of earlier texts of the file that this
	// one stands in for ("-- replaces: SHA256").
	Replaces []string
}

// Current reports whether checksum, as recorded when the migration was
// applied, is that of its current text or of one it replaces.
func (m Migration) Current(checksum string) bool {
	return checksum == m.Checksum || slices.Contains(m.Replaces, checksum)
}

var fileName = regexp.MustCompile(`^(\d{3})_([a-z0-9_]+)\.sql$`)
var requiresLine = regexp.MustCompile(`^--\s*requires:\s*(\S+)\s*$`)
var stepLine = regexp.MustCompile(`^--\s*step:\s*([a-z0-9_]+)\s*$`)
var replacesLine = regexp.MustCompile(`^--\s*replaces:\s*(\S*)\s*$`)
var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Migrations parses the embedded DDL files, ordered by version.
func Migrations() ([]Migration, error) {
	ms, err := parseDir(ddlFiles, "ddl", "ddl file", ParseMigration)
	if err != nil {
		return nil, err
	}
	seen := map[uint32]string{}
	for _, m := range ms {
		if prev, ok := seen[m.Version]; ok {
			return nil, fmt.Errorf("ddl files %q and %q share version %d", prev, m.File, m.Version)
		}
		seen[m.Version] = m.File
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// ParseMigration parses one DDL file named name with content text.
func ParseMigration(name, text string) (Migration, error) {
	m := fileName.FindStringSubmatch(name)
	if m == nil {
		return Migration{}, fmt.Errorf("ddl file %q: name is not NNN_name.sql", name)
	}
	v, _ := strconv.ParseUint(m[1], 10, 32)
	text, err := expandFragments(ddlFragmentFiles, "ddl/fragments", text)
	if err != nil {
		return Migration{}, fmt.Errorf("ddl file %s: %w", name, err)
	}
	sum := sha256.Sum256([]byte(text))
	mig := Migration{Version: uint32(v), Name: m[2], File: name, Checksum: hex.EncodeToString(sum[:])}
	// The requires marker must sit in the leading comment block.
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "--") {
			break
		}
		if r := requiresLine.FindStringSubmatch(line); r != nil {
			sv, err := ParseServerVersion(r[1])
			if err != nil {
				return Migration{}, fmt.Errorf("ddl file %s: requires: %w", name, err)
			}
			mig.Requires = sv
		}
		if r := stepLine.FindStringSubmatch(line); r != nil {
			mig.Step = r[1]
		}
		if r := replacesLine.FindStringSubmatch(line); r != nil {
			if !sha256Hex.MatchString(r[1]) {
				return Migration{}, fmt.Errorf("ddl file %s: replaces: %q is not the lower-case hex SHA-256 of an earlier text", name, r[1])
			}
			mig.Replaces = append(mig.Replaces, r[1])
		}
	}
	mig.Statements = SplitStatements(text)
	if len(mig.Statements) == 0 {
		return Migration{}, fmt.Errorf("ddl file %s: no statements", name)
	}
	for _, s := range mig.Statements {
		if err := checkPlaceholders(s); err != nil {
			return Migration{}, fmt.Errorf("ddl file %s: %w", name, err)
		}
	}
	return mig, nil
}

// SplitStatements removes '--' comments and splits text at ';' into trimmed,
// non-empty statements. Quotes are respected, so a ';' or "--" inside a
// string literal or a quoted identifier does not split.
func SplitStatements(text string) []string {
	var out []string
	var cur strings.Builder
	var quote byte // ', " or ` while inside one
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case quote != 0:
			cur.WriteByte(c)
			if c == '\\' && i+1 < len(text) {
				i++
				cur.WriteByte(text[i])
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
			cur.WriteByte(c)
		case c == '-' && i+1 < len(text) && text[i+1] == '-':
			for i < len(text) && text[i] != '\n' {
				i++
			}
			cur.WriteByte('\n')
		case c == ';':
			if s := strings.TrimSpace(cur.String()); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// Placeholders the DDL files may use.
const (
	PlaceholderDatabase   = "{{database}}"
	PlaceholderOnCluster  = "{{on_cluster}}"
	PlaceholderReplicated = "{{replicated}}"
)

var placeholder = regexp.MustCompile(`\{\{[^}]*\}\}`)

func checkPlaceholders(stmt string) error {
	for _, p := range placeholder.FindAllString(stmt, -1) {
		switch p {
		case PlaceholderDatabase, PlaceholderOnCluster, PlaceholderReplicated:
		default:
			return fmt.Errorf("unknown placeholder %s", p)
		}
	}
	return nil
}

// DDLParams fill the placeholders of the DDL files.
type DDLParams struct {
	// Database holds every taillight table. Required; a plain identifier.
	Database string
	// Cluster, when set, adds ON CLUSTER to every statement (cluster mode).
	Cluster string
	// Replicated switches MergeTree engines to their Replicated variants,
	// with the server's default replica path and name.
	Replicated bool
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidIdentifier reports whether s can be used unquoted as a ClickHouse
// database or cluster name.
func ValidIdentifier(s string) bool { return identifier.MatchString(s) }

// Render substitutes the placeholders of stmt.
func (p DDLParams) Render(stmt string) (string, error) {
	if !ValidIdentifier(p.Database) {
		return "", fmt.Errorf("database name %q is not a plain identifier", p.Database)
	}
	onCluster := ""
	if p.Cluster != "" {
		if !ValidIdentifier(p.Cluster) {
			return "", fmt.Errorf("cluster name %q is not a plain identifier", p.Cluster)
		}
		onCluster = "ON CLUSTER " + p.Cluster
	}
	replicated := ""
	if p.Replicated {
		replicated = "Replicated"
	}
	if err := checkPlaceholders(stmt); err != nil {
		return "", err
	}
	spaced := ""
	if onCluster != "" {
		spaced = " " + onCluster
	}
	return strings.NewReplacer(
		PlaceholderDatabase, p.Database,
		" "+PlaceholderOnCluster, spaced, // no stray space on a single server
		PlaceholderOnCluster, onCluster,
		PlaceholderReplicated, replicated,
	).Replace(stmt), nil
}

// ServerVersion is a ClickHouse release, as version() reports it.
type ServerVersion struct {
	Major, Minor, Patch int
}

// ParseServerVersion parses "18.16.1", "20.3" or "24.8.4.13".
func ParseServerVersion(s string) (ServerVersion, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return ServerVersion{}, fmt.Errorf("server version %q: want MAJOR.MINOR[.PATCH…]", s)
	}
	var n [3]int
	for i := 0; i < len(parts) && i < 3; i++ {
		v, err := strconv.Atoi(parts[i])
		if err != nil || v < 0 {
			return ServerVersion{}, fmt.Errorf("server version %q: part %q is not a number", s, parts[i])
		}
		n[i] = v
	}
	return ServerVersion{n[0], n[1], n[2]}, nil
}

// IsZero reports whether v is the zero version (no requirement).
func (v ServerVersion) IsZero() bool { return v == ServerVersion{} }

// AtLeast reports whether v is o or newer.
func (v ServerVersion) AtLeast(o ServerVersion) bool {
	if v.Major != o.Major {
		return v.Major > o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor > o.Minor
	}
	return v.Patch >= o.Patch
}

func (v ServerVersion) String() string {
	if v.Patch == 0 {
		return fmt.Sprintf("%d.%d", v.Major, v.Minor)
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Cluster mode (DDLParams.Cluster set): RenderCluster turns one templated
// statement into the statements a cluster needs, from the same DDL files.
//
//   - CREATE TABLE of a table in ShardedTables creates the shard-local table
//     NAME_local (ON CLUSTER, a Replicated*MergeTree under
//     /clickhouse/tables/{shard}/DATABASE/NAME_local with replica {replica})
//     and then NAME, a Distributed table over NAME_local sharded by
//     kafka_partition: the name people and views query;
//   - CREATE TABLE of any other table (schema_migrations) creates it
//     Replicated per shard, under the same name;
//   - ALTER TABLE of a sharded table alters NAME_local, then drops and
//     recreates NAME, the Distributed table, AS the altered NAME_local
//     (ClickHouse 18.16 refuses an ALTER … ON CLUSTER of a table that is
//     not replicated on a cluster whose shards are; a Distributed table
//     holds no rows of taillight's, which writes the local tables, so it
//     is recreated with the new columns instead);
//   - everything else (database, views) is rendered as Render does; views
//     name the Distributed tables.

// ShardedTables are the tables that are sharded by kafka_partition in
// cluster mode (a local table per shard plus a Distributed table).
var ShardedTables = []string{"trace_items", "rollup_blocks", "trace_items_v2", "raw_offsets", "rollup_journal", "rollup_minutes", "kafka_logs"}

// LocalSuffix names a sharded table's shard-local table in cluster mode.
const LocalSuffix = "_local"

// ShardingKey is the Distributed tables' sharding expression. With equal
// shard weights a row lands on shard number (kafka_partition % shards)+1,
// the shard chsink writes a partition's blocks to.
const ShardingKey = "kafka_partition"

// IsSharded reports whether table is one of ShardedTables.
func IsSharded(table string) bool {
	for _, t := range ShardedTables {
		if t == table {
			return true
		}
	}
	return false
}

var (
	createTable      = regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS \{\{database\}\}\.([A-Za-z_][A-Za-z0-9_]*)(\s)`)
	alterTable       = regexp.MustCompile(`^ALTER TABLE \{\{database\}\}\.([A-Za-z_][A-Za-z0-9_]*)(\s)`)
	materializedView = regexp.MustCompile(`^CREATE MATERIALIZED VIEW `)
	tableRef         = regexp.MustCompile(`\{\{database\}\}\.[A-Za-z_][A-Za-z0-9_]*`)
	// The engine clause, with its optional argument list (no nested parens).
	replicatedEngine = regexp.MustCompile(`\{\{replicated\}\}([A-Za-z]*MergeTree)(\(([^()]*)\))?`)
)

// RenderCluster renders stmt for p: exactly Render's result on a single
// server (Cluster empty), one or more statements in cluster mode (see
// above).
func (p DDLParams) RenderCluster(stmt string) ([]string, error) {
	if p.Cluster == "" {
		s, err := p.Render(stmt)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	if m := createTable.FindStringSubmatch(stmt); m != nil {
		table := m[1]
		local := table
		if IsSharded(table) {
			local = table + LocalSuffix
		}
		engines := replicatedEngine.FindAllStringSubmatchIndex(stmt, -1)
		if len(engines) != 1 {
			return nil, fmt.Errorf("cluster mode: CREATE TABLE %s: want exactly one {{replicated}}…MergeTree engine, found %d", table, len(engines))
		}
		e := engines[0]
		engine := stmt[e[2]:e[3]]
		args := ""
		if e[6] >= 0 {
			args = strings.TrimSpace(stmt[e[6]:e[7]])
		}
		repl := fmt.Sprintf("Replicated%s('/clickhouse/tables/{shard}/%s/%s', '{replica}'", engine, p.Database, local)
		if args != "" {
			repl += ", " + args
		}
		repl += ")"
		s := stmt[:e[0]] + repl + stmt[e[1]:]
		s = "CREATE TABLE IF NOT EXISTS {{database}}." + local + m[2] + s[len(m[0]):]
		first, err := p.Render(s)
		if err != nil {
			return nil, err
		}
		out := []string{first}
		if IsSharded(table) {
			out = append(out, p.distributed(table))
		}
		return out, nil
	}
	if materializedView.MatchString(stmt) {
		// A materialized view fires on INSERTs into the table it reads: on
		// each shard, between the local tables.
		s := tableRef.ReplaceAllStringFunc(stmt, func(ref string) string {
			if IsSharded(strings.TrimPrefix(ref, "{{database}}.")) {
				return ref + LocalSuffix
			}
			return ref
		})
		r, err := p.Render(s)
		if err != nil {
			return nil, err
		}
		return []string{r}, nil
	}
	if m := alterTable.FindStringSubmatch(stmt); m != nil && IsSharded(m[1]) {
		table, local := m[1], m[1]+LocalSuffix
		a, err := p.Render("ALTER TABLE {{database}}." + local + m[2] + stmt[len(m[0]):])
		if err != nil {
			return nil, err
		}
		return []string{a,
			fmt.Sprintf("DROP TABLE IF EXISTS %s.%s ON CLUSTER %s", p.Database, table, p.Cluster),
			p.distributed(table)}, nil
	}
	s, err := p.Render(stmt)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

// distributed is the CREATE of the Distributed table NAME over NAME_local.
func (p DDLParams) distributed(table string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %[1]s.%[2]s ON CLUSTER %[3]s AS %[1]s.%[4]s\nENGINE = Distributed(%[3]s, %[1]s, %[4]s, %[5]s)",
		p.Database, table, p.Cluster, table+LocalSuffix, ShardingKey)
}

// AddColumnIfNotExistsSince is the oldest release taillight relies on for
// ALTER TABLE … ADD COLUMN IF NOT EXISTS; chsink.Migrate emulates it on
// older servers (ClickHouse 18.16 has none).
var AddColumnIfNotExistsSince = ServerVersion{20, 1, 0}

var (
	alterTarget = regexp.MustCompile(`^ALTER TABLE ([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s`)
	addColumnIf = regexp.MustCompile(`(?i)ADD COLUMN IF NOT EXISTS ([A-Za-z_][A-Za-z0-9_]*)`)
)

// AddColumns is what an ALTER TABLE … ADD COLUMN IF NOT EXISTS statement
// adds, for servers that lack IF NOT EXISTS there.
type AddColumns struct {
	Database, Table string
	Columns         []string // the columns added
	// Plain is the statement without IF NOT EXISTS: run it when none of
	// Columns exists; when all do, the statement was applied (one ALTER
	// changes a table's metadata at once).
	Plain string
}

// ParseAddColumns reports whether the rendered statement stmt is an ALTER
// TABLE db.table with ADD COLUMN IF NOT EXISTS clauses, and what they add.
func ParseAddColumns(stmt string) (AddColumns, bool) {
	m := alterTarget.FindStringSubmatch(stmt)
	if m == nil {
		return AddColumns{}, false
	}
	adds := addColumnIf.FindAllStringSubmatch(stmt, -1)
	if len(adds) == 0 {
		return AddColumns{}, false
	}
	a := AddColumns{Database: m[1], Table: m[2]}
	for _, c := range adds {
		a.Columns = append(a.Columns, c[1])
	}
	a.Plain = addColumnIf.ReplaceAllString(stmt, "ADD COLUMN $1")
	return a, true
}
