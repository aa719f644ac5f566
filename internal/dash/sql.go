package dash

import (
	"errors"
	"fmt"
	"strings"
)

// Errors CheckSQL returns (wrapped, with details).
var (
	ErrNotSelect      = errors.New("only a SELECT (or WITH … SELECT) query can run here")
	ErrMultiStatement = errors.New("only one statement can run at a time")
	ErrOtherDatabase  = errors.New("only the taillight database can be read here")
	ErrBadSQL         = errors.New("the SQL cannot be read")
)

// CheckSQL vets ad-hoc SQL before it is sent and returns it without
// trailing semicolons. It is defence in depth and clear error messages, not
// the guarantee: the guarantee is readonly=1 on every query (no writes, no
// DDL, no SET or SETTINGS, no table functions) and, for other databases, a
// ClickHouse user whose allow_databases holds only the taillight database.
//
// It tokenizes the text (quotes, comments) and refuses:
//   - anything but one statement starting with SELECT or WITH (so no
//     INSERT, DROP, CREATE, ALTER, SET, KILL, OPTIMIZE, SYSTEM, SHOW…);
//   - a second statement after ';';
//   - a qualified name db.x whose db is "system", "information_schema" or
//     any database in databases other than database (ClickHouse 18.16 lets
//     every user read the system database; its tables name other users'
//     queries and the server's settings);
//   - quoted identifiers with backslash escapes, and unterminated quotes or
//     comments, which could hide a name from this check.
func CheckSQL(sql, database string, databases []string) (string, error) {
	toks, err := tokenize(sql)
	if err != nil {
		return "", err
	}
	// Drop trailing semicolons; any other one separates statements.
	end := len(toks)
	for end > 0 && toks[end-1].kind == tokSemicolon {
		end--
	}
	toks = toks[:end]
	if len(toks) == 0 {
		return "", fmt.Errorf("%w: the SQL is empty", ErrNotSelect)
	}
	for _, t := range toks {
		if t.kind == tokSemicolon {
			return "", ErrMultiStatement
		}
	}
	first := toks[0]
	for i := 0; first.kind == tokSymbol && first.text == "(" && i+1 < len(toks); i++ {
		first = toks[i+1] // (SELECT …) UNION ALL (SELECT …)
	}
	if first.kind != tokWord || (!strings.EqualFold(first.text, "SELECT") && !strings.EqualFold(first.text, "WITH")) {
		return "", fmt.Errorf("%w; this one starts with %q", ErrNotSelect, first.text)
	}
	other := map[string]bool{"system": true, "information_schema": true}
	for _, d := range databases {
		if d != database {
			other[strings.ToLower(d)] = true
		}
	}
	for i, t := range toks {
		if t.kind != tokWord && t.kind != tokQuotedIdent {
			continue
		}
		if i+1 < len(toks) && toks[i+1].kind == tokSymbol && toks[i+1].text == "." && other[strings.ToLower(t.text)] {
			return "", fmt.Errorf("%w: %q is another database", ErrOtherDatabase, t.text)
		}
	}
	return strings.TrimSpace(sql[:toks[len(toks)-1].end]), nil
}

type tokKind int

const (
	tokWord tokKind = iota
	tokQuotedIdent
	tokString
	tokNumber
	tokSymbol
	tokSemicolon
)

type token struct {
	kind tokKind
	text string // identifiers unquoted
	end  int    // byte offset just past the token
}

// tokenize splits sql into tokens as ClickHouse's lexer does, closely
// enough to find statement boundaries and qualified names: comments (--,
// #!, /* */) and whitespace are skipped; '…' strings keep their escapes.
func tokenize(sql string) ([]token, error) {
	var toks []token
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && strings.HasPrefix(sql[i:], "--"), c == '#' && strings.HasPrefix(sql[i:], "#!"):
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				i = len(sql)
			} else {
				i += j + 1
			}
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			// ClickHouse nests block comments.
			depth, j := 1, i+2
			for j < len(sql) && depth > 0 {
				switch {
				case strings.HasPrefix(sql[j:], "/*"):
					depth++
					j += 2
				case strings.HasPrefix(sql[j:], "*/"):
					depth--
					j += 2
				default:
					j++
				}
			}
			if depth > 0 {
				return nil, fmt.Errorf("%w: unterminated /* comment", ErrBadSQL)
			}
			i = j
		case c == '\'' || c == '"' || c == '`':
			j, text, escaped, err := readQuoted(sql, i)
			if err != nil {
				return nil, err
			}
			if c == '\'' {
				toks = append(toks, token{kind: tokString, text: text, end: j})
			} else {
				if escaped {
					return nil, fmt.Errorf("%w: backslash escapes in quoted names are not allowed here", ErrBadSQL)
				}
				toks = append(toks, token{kind: tokQuotedIdent, text: text, end: j})
			}
			i = j
		case isWordByte(c) && !(c >= '0' && c <= '9'):
			j := i
			for j < len(sql) && isWordByte(sql[j]) {
				j++
			}
			toks = append(toks, token{kind: tokWord, text: sql[i:j], end: j})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(sql) && (isWordByte(sql[j]) || sql[j] == '.' ||
				((sql[j] == '+' || sql[j] == '-') && (sql[j-1] == 'e' || sql[j-1] == 'E' || sql[j-1] == 'p' || sql[j-1] == 'P'))) {
				j++
			}
			toks = append(toks, token{kind: tokNumber, text: sql[i:j], end: j})
			i = j
		case c == ';':
			toks = append(toks, token{kind: tokSemicolon, text: ";", end: i + 1})
			i++
		default:
			toks = append(toks, token{kind: tokSymbol, text: sql[i : i+1], end: i + 1})
			i++
		}
	}
	return toks, nil
}

// isWordByte: ClickHouse identifiers are [a-zA-Z_0-9] plus any non-ASCII
// byte (UTF-8 names).
func isWordByte(c byte) bool {
	return c == '_' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// readQuoted reads the quoted token starting at sql[i] (its quote char is
// sql[i]); a backslash escapes the next byte and a doubled quote is one
// quote. It returns the offset past the closing quote, the raw content and
// whether a backslash occurred.
func readQuoted(sql string, i int) (int, string, bool, error) {
	q := sql[i]
	var b strings.Builder
	escaped := false
	for j := i + 1; j < len(sql); j++ {
		c := sql[j]
		switch {
		case c == '\\':
			escaped = true
			if j+1 >= len(sql) {
				return 0, "", false, fmt.Errorf("%w: unterminated %c quote", ErrBadSQL, q)
			}
			b.WriteByte(c)
			b.WriteByte(sql[j+1])
			j++
		case c == q && j+1 < len(sql) && sql[j+1] == q:
			b.WriteByte(q)
			j++
		case c == q:
			return j + 1, b.String(), escaped, nil
		default:
			b.WriteByte(c)
		}
	}
	return 0, "", false, fmt.Errorf("%w: unterminated %c quote", ErrBadSQL, q)
}
