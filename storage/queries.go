package storage

import (
	"embed"
	"fmt"
	"io/fs"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Saved queries: storage/queries/NAME.sql, the SQL behind the built-in
// dashboard (taillight dash) and the Grafana dashboards. Each file is one
// SELECT statement (no trailing ';') after a header of "-- key: value"
// comment lines:
//
//	-- title: Errors per endpoint            (required)
//	-- description: one sentence             (required)
//	-- chart: line | bar | stat | table      (required)
//	-- x: t                                  (line, bar: the x or label column)
//	-- y: errors                             (line, bar: the value column)
//	-- series: endpoint                      (line: one line per value; bar: stacked)
//	-- panel: no                             (optional: not a panel of its own)
//	-- params: from DateTime, to DateTime, script String
//
// Placeholders. ClickHouse 18.16 has no server-side query parameters, so the
// values are substituted by RenderQuery, never concatenated by hand:
//
//	{{database}}     the taillight database (a validated identifier)
//	{name:DateTime}  a time, rendered toDateTime(<unix seconds>)
//	{name:UInt32}    a non-negative integer, rendered as digits
//	{name:UInt64}    the same, up to 2^64-1 (Kafka offsets)
//	{name:String}    a string, rendered by QuoteString as a '…' literal
//	{{window:NAME}}  the rows of view NAME (endpoint_errors_1m, …) for the
//	                 minutes in [{from}, {to}), as a subquery that filters
//	                 before FINAL (storage/windows/NAME.sql): on 18.16 a
//	                 WHERE is not pushed into a view, so a query over the
//	                 view itself reads every sealed minute
//	{{fragment:NAME}} the text of storage/queries/fragments/NAME.sql (SQL
//	                 that several queries share, such as their filters),
//	                 comment lines removed; a fragment may use fragments and
//	                 windows, and its {name:Type} placeholders count as the
//	                 query's own. An unknown fragment fails the load.
//
// A window or fragment is inserted as it is, its lines after the first
// indented as the placeholder's line: a fragment is written as it stands
// at that line's indentation (and holds no multi-line string literal).
//
// The {name:Type} form is ClickHouse's own query-parameter syntax, so a
// current server (and chdb) runs a file unchanged with param_name settings.
// The params header must list exactly the placeholders the body uses.
// Filters are empty strings when not set; the SQL says ({x:String} = '' OR
// col = {x:String}).

//go:embed queries/*.sql
var queryFiles embed.FS

//go:embed queries/fragments/*.sql
var fragmentFiles embed.FS

//go:embed windows/*.sql
var windowFiles embed.FS

var (
	windowRE   = regexp.MustCompile(`\{\{window:([a-z0-9_]+)\}\}`)
	fragmentRE = regexp.MustCompile(`\{\{fragment:([a-z0-9_]+)\}\}`)
)

// Window returns the windowed form of view name (storage/windows), without
// its comments, with {{database}}, {from:DateTime} and {to:DateTime}
// placeholders.
func Window(name string) (string, error) {
	w, err := sqlText(windowFiles, "windows/"+name+".sql")
	if err != nil {
		return "", fmt.Errorf("no window form of view %q", name)
	}
	return w, nil
}

// sqlText returns the file path of fsys without its comment lines, trimmed.
func sqlText(fsys fs.FS, path string) (string, error) {
	b, err := fs.ReadFile(fsys, path)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			out.WriteString(line)
		}
	}
	return strings.TrimSpace(out.String()), nil
}

// expandFragments replaces each {{fragment:NAME}} with the text of
// dir/NAME.sql in fsys (queries/fragments, or ddl/fragments for the DDL),
// its own fragments expanded; outer names the fragments being expanded, to
// catch a cycle.
func expandFragments(fsys fs.FS, dir, sql string, outer ...string) (string, error) {
	return expand(sql, fragmentRE, func(name string) (string, error) {
		if slices.Contains(outer, name) {
			return "", fmt.Errorf("fragment %q uses itself (via %s)", name, strings.Join(outer, ", "))
		}
		text, err := sqlText(fsys, dir+"/"+name+".sql")
		if err != nil {
			return "", fmt.Errorf("unknown fragment %q (no storage/%s/%s.sql)", name, dir, name)
		}
		return expandFragments(fsys, dir, text, append(outer, name)...)
	})
}

// expandWindows replaces each {{window:NAME}} with its subquery.
func expandWindows(sql string) (string, error) {
	return expand(sql, windowRE, func(name string) (string, error) {
		w, err := Window(name)
		return "(\n" + w + "\n)", err
	})
}

// expand replaces each match of re in sql with text(its first group), the
// lines of that text after the first indented as the match's line.
func expand(sql string, re *regexp.Regexp, text func(name string) (string, error)) (string, error) {
	var out strings.Builder
	last := 0
	for _, m := range re.FindAllStringSubmatchIndex(sql, -1) {
		t, err := text(sql[m[2]:m[3]])
		if err != nil {
			return "", err
		}
		line := sql[strings.LastIndexByte(sql[:m[0]], '\n')+1 : m[0]]
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		out.WriteString(sql[last:m[0]])
		out.WriteString(strings.ReplaceAll(t, "\n", "\n"+indent))
		last = m[1]
	}
	out.WriteString(sql[last:])
	return out.String(), nil
}

// Chart types a saved query's header may name.
const (
	ChartLine  = "line"  // x is a DateTime column, y a number, series optional
	ChartBar   = "bar"   // x is a label column, y a number, series optional (stacked)
	ChartStat  = "stat"  // one row; every column a figure
	ChartTable = "table" // rows as they come
)

// Parameter types of the placeholders.
const (
	ParamDateTime = "DateTime"
	ParamUInt32   = "UInt32"
	ParamUInt64   = "UInt64"
	ParamString   = "String"
)

// Param is one declared parameter of a saved query.
type Param struct {
	Name string `json:"name"`
	Type string `json:"type"` // ParamDateTime, ParamUInt32, ParamUInt64 or ParamString
}

// Query is one saved query.
type Query struct {
	Name        string `json:"name"` // the file name without .sql
	Title       string `json:"title"`
	Description string `json:"description"`
	Chart       string `json:"chart"`
	X           string `json:"x,omitempty"`
	Y           string `json:"y,omitempty"`
	Series      string `json:"series,omitempty"`
	// Panel is false for queries the dashboard runs from a view of their
	// own (the invocation explorer) rather than as a panel: header
	// "panel: no". Grafana shows only panels.
	Panel  bool    `json:"panel"`
	Params []Param `json:"params"`
	// SQL is the statement as written, header comments removed, with its
	// placeholders.
	SQL string `json:"-"`
}

// HasParam reports whether q declares the parameter name.
func (q *Query) HasParam(name string) bool {
	return slices.ContainsFunc(q.Params, func(p Param) bool { return p.Name == name })
}

var (
	queryFileName = regexp.MustCompile(`^([a-z][a-z0-9_]*)\.sql$`)
	headerLine    = regexp.MustCompile(`^--\s*([a-z]+):\s*(.*?)\s*$`)
	// placeholderRE matches a typed placeholder {name:Type}.
	placeholderRE = regexp.MustCompile(`\{([a-z_][a-z0-9_]*):([A-Za-z0-9]+)\}`)
	paramDecl     = regexp.MustCompile(`^([a-z_][a-z0-9_]*)\s+([A-Za-z0-9]+)$`)
)

// Queries parses every embedded saved query, ordered by name.
func Queries() ([]Query, error) {
	qs, err := parseDir(queryFiles, "queries", "query file", ParseQuery)
	if err != nil {
		return nil, err
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].Name < qs[j].Name })
	return qs, nil
}

// parseDir parses each file of the embedded directory dir with parse, in
// the order of their names; kind names a file in errors.
func parseDir[T any](fsys embed.FS, dir, kind string, parse func(name, text string) (T, error)) ([]T, error) {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded %s: %w", dir, err)
	}
	out := make([]T, 0, len(ents))
	for _, e := range ents {
		b, err := fsys.ReadFile(dir + "/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read %s %s: %w", kind, e.Name(), err)
		}
		v, err := parse(e.Name(), string(b))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// ParseQuery parses one saved-query file named name with content text.
func ParseQuery(name, text string) (Query, error) {
	m := queryFileName.FindStringSubmatch(name)
	if m == nil {
		return Query{}, fmt.Errorf("query file %q: name is not lower_case.sql", name)
	}
	q := Query{Name: m[1], Panel: true}
	// The headers that set a text field as they are.
	fields := map[string]*string{"title": &q.Title, "description": &q.Description, "chart": &q.Chart,
		"x": &q.X, "y": &q.Y, "series": &q.Series}
	var body strings.Builder
	inHeader := true
	var declared bool
	for line := range strings.Lines(text) {
		trim := strings.TrimSpace(line)
		if inHeader && strings.HasPrefix(trim, "--") {
			h := headerLine.FindStringSubmatch(trim)
			if h == nil {
				continue // a plain comment
			}
			key, val := h[1], h[2]
			if p, ok := fields[key]; ok {
				*p = val
				continue
			}
			switch key {
			case "panel":
				switch val {
				case "yes":
				case "no":
					q.Panel = false
				default:
					return Query{}, fmt.Errorf("query file %s: panel %q: want yes or no", name, val)
				}
			case "params":
				declared = true
				for _, d := range strings.Split(val, ",") {
					d = strings.TrimSpace(d)
					if d == "" {
						continue
					}
					pm := paramDecl.FindStringSubmatch(d)
					if pm == nil {
						return Query{}, fmt.Errorf("query file %s: param %q is not 'name Type'", name, d)
					}
					q.Params = append(q.Params, Param{Name: pm[1], Type: pm[2]})
				}
			default:
				return Query{}, fmt.Errorf("query file %s: unknown header key %q", name, key)
			}
			continue
		}
		if inHeader && trim == "" {
			continue
		}
		inHeader = false
		body.WriteString(line)
	}
	sql, err := expandFragments(fragmentFiles, "queries/fragments", strings.TrimSpace(body.String()))
	if err == nil {
		sql, err = expandWindows(sql)
	}
	if err != nil {
		return Query{}, fmt.Errorf("query file %s: %w", name, err)
	}
	q.SQL = sql
	if err := q.validate(declared); err != nil {
		return Query{}, fmt.Errorf("query file %s: %w", name, err)
	}
	return q, nil
}

func (q *Query) validate(declared bool) error {
	if q.Title == "" || q.Description == "" {
		return fmt.Errorf("title and description headers are required")
	}
	switch q.Chart {
	case ChartLine, ChartBar:
		if q.X == "" || q.Y == "" {
			return fmt.Errorf("a %s chart needs x and y headers", q.Chart)
		}
	case ChartStat, ChartTable:
		if q.X != "" || q.Y != "" || q.Series != "" {
			return fmt.Errorf("a %s chart takes no x, y or series header", q.Chart)
		}
	default:
		return fmt.Errorf("chart %q: want line, bar, stat or table", q.Chart)
	}
	if q.Series != "" && q.Chart != ChartLine && q.Chart != ChartBar {
		return fmt.Errorf("only a line or bar chart takes a series header")
	}
	if !declared {
		return fmt.Errorf("params header is required (it may be empty)")
	}
	if q.SQL == "" {
		return fmt.Errorf("no statement")
	}
	if strings.Contains(q.SQL, ";") {
		return fmt.Errorf("one statement, without ';'")
	}
	if strings.Contains(q.SQL, "--") {
		return fmt.Errorf("comments belong in the header, not in the statement")
	}
	if !strings.Contains(q.SQL, PlaceholderDatabase) {
		return fmt.Errorf("the statement must name its tables as {{database}}.table")
	}
	for _, p := range placeholder.FindAllString(q.SQL, -1) {
		if p != PlaceholderDatabase {
			return fmt.Errorf("unknown placeholder %s", p)
		}
	}
	decl := map[string]string{}
	for _, p := range q.Params {
		switch p.Type {
		case ParamDateTime, ParamUInt32, ParamUInt64, ParamString:
		default:
			return fmt.Errorf("param %s: type %q: want DateTime, UInt32, UInt64 or String", p.Name, p.Type)
		}
		if _, dup := decl[p.Name]; dup {
			return fmt.Errorf("param %s declared twice", p.Name)
		}
		decl[p.Name] = p.Type
	}
	used := map[string]bool{}
	for _, m := range placeholderRE.FindAllStringSubmatch(q.SQL, -1) {
		typ, ok := decl[m[1]]
		if !ok {
			return fmt.Errorf("placeholder %s is not in the params header", m[0])
		}
		if typ != m[2] {
			return fmt.Errorf("placeholder %s: declared as %s", m[0], typ)
		}
		used[m[1]] = true
	}
	for _, p := range q.Params {
		if !used[p.Name] {
			return fmt.Errorf("param %s is declared but not used", p.Name)
		}
	}
	// Anything else in braces is a typo of a placeholder.
	rest := placeholderRE.ReplaceAllString(strings.ReplaceAll(q.SQL, PlaceholderDatabase, ""), "")
	if strings.ContainsAny(rest, "{}") {
		return fmt.Errorf("malformed placeholder (want {name:Type})")
	}
	return nil
}

// QueryArgs are the values of a saved query's parameters: time.Time for
// DateTime, a non-negative integer (int, int64, uint32, uint64) for UInt32
// and UInt64, string for String. Values for parameters the query does not declare are
// ignored, so one set of dashboard filters serves every query.
type QueryArgs map[string]any

// RenderQuery substitutes q's placeholders: database must be a plain
// identifier, and args must hold a value of the declared type for every
// declared parameter.
func RenderQuery(q *Query, database string, args QueryArgs) (string, error) {
	if !ValidIdentifier(database) {
		return "", fmt.Errorf("render query %s: database name %q is not a plain identifier", q.Name, database)
	}
	vals := make(map[string]string, len(q.Params))
	for _, p := range q.Params {
		v, ok := args[p.Name]
		if !ok {
			return "", fmt.Errorf("render query %s: no value for parameter %s", q.Name, p.Name)
		}
		lit, err := Literal(p.Type, v)
		if err != nil {
			return "", fmt.Errorf("render query %s: parameter %s: %w", q.Name, p.Name, err)
		}
		vals[p.Name] = lit
	}
	var err error
	out := placeholderRE.ReplaceAllStringFunc(q.SQL, func(ph string) string {
		m := placeholderRE.FindStringSubmatch(ph)
		lit, ok := vals[m[1]]
		if !ok && err == nil {
			err = fmt.Errorf("render query %s: undeclared placeholder %s", q.Name, ph)
		}
		return lit
	})
	if err != nil {
		return "", err
	}
	return strings.ReplaceAll(out, PlaceholderDatabase, database), nil
}

// Literal renders v as a ClickHouse literal of the parameter type typ.
func Literal(typ string, v any) (string, error) {
	switch typ {
	case ParamDateTime:
		t, ok := v.(time.Time)
		if !ok {
			return "", fmt.Errorf("want time.Time for DateTime, got %T", v)
		}
		s := t.Unix()
		if s < 0 || s > math.MaxUint32 {
			return "", fmt.Errorf("time %s is outside ClickHouse's DateTime range", t.UTC().Format(time.RFC3339))
		}
		return "toDateTime(" + strconv.FormatInt(s, 10) + ")", nil
	case ParamUInt32, ParamUInt64:
		var n uint64
		switch x := v.(type) {
		case int:
			if x < 0 {
				return "", fmt.Errorf("%d is negative", x)
			}
			n = uint64(x)
		case int64:
			if x < 0 {
				return "", fmt.Errorf("%d is negative", x)
			}
			n = uint64(x)
		case uint32:
			n = uint64(x)
		case uint64:
			n = x
		default:
			return "", fmt.Errorf("want an integer for %s, got %T", typ, v)
		}
		if typ == ParamUInt32 && n > math.MaxUint32 {
			return "", fmt.Errorf("%d does not fit UInt32", n)
		}
		return strconv.FormatUint(n, 10), nil
	case ParamString:
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("want string for String, got %T", v)
		}
		return QuoteString(s), nil
	}
	return "", fmt.Errorf("unknown parameter type %q", typ)
}

// QuoteString returns s as a single-quoted ClickHouse string literal that
// evaluates to exactly the bytes of s, on every ClickHouse version: the
// backslash and the quote are escaped with a backslash, and so are the
// control bytes that would otherwise be hard to read (NUL, \b, \f, \n, \r,
// \t). Every other byte, including invalid UTF-8, is copied as it is.
func QuoteString(s string) string {
	return QuoteWith(s, '\'', &stringEscapes)
}

var stringEscapes = [256]string{'\\': `\\`, '\'': `\'`, 0: `\0`, '\b': `\b`, '\f': `\f`, '\n': `\n`, '\r': `\r`, '\t': `\t`}

// QuoteWith returns s between two quote bytes, each byte c of s written as
// escapes[c] where that is not empty and as it is otherwise. It serves
// other C-style literals as well as ClickHouse's (the test environment's
// Cap'n Proto config); escapes must cover the quote and the backslash.
func QuoteWith(s string, quote byte, escapes *[256]string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(quote)
	for i := 0; i < len(s); i++ {
		if e := escapes[s[i]]; e != "" {
			b.WriteString(e)
		} else {
			b.WriteByte(s[i])
		}
	}
	b.WriteByte(quote)
	return b.String()
}
