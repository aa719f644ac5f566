package dash

import (
	"fmt"
	"net/http"
	"strings"
)

// ClickHouse exception codes of the limits a dashboard query can hit.
const (
	codeTooManyRows        = 158 // max_rows_to_read, max_rows_to_group_by, …
	codeTimeoutExceeded    = 159 // max_execution_time
	codeTooSlow            = 160 // the estimated time is over max_execution_time
	codeMemoryLimit        = 241 // max_memory_usage
	codeTooManyBytes       = 307 // max_bytes_to_read, …
	codeTooManyRowsOrBytes = 396 // max_result_rows, max_result_bytes
)

// classify names the limit that stopped a query (time, memory, rows or
// bytes; "" when none did) and says how to get under it.
func (s *Server) classify(qe *queryError) (limit, hint string) {
	const narrow = "Narrow the view: a shorter time range, a script (or other) filter, or fewer rows or series."
	msg := qe.err.Error()
	switch {
	case qe.code == codeTimeoutExceeded || qe.code == codeTooSlow || qe.status == http.StatusGatewayTimeout:
		return "time", fmt.Sprintf("The query ran into the time limit (%s, flag -dash.max-execution-time). %s A text search reads every message in the range: a shorter range helps it most.",
			s.cfg.MaxExecutionTime, narrow)
	case qe.code == codeMemoryLimit:
		return "memory", "The query needed more memory than ClickHouse allows the dashboard's user (max_memory_usage in its profile). " + narrow
	case qe.code == codeTooManyRowsOrBytes && strings.Contains(msg, "bytes"), qe.code == codeTooManyBytes:
		return "bytes", "The query read or returned more bytes than the dashboard's user may (max_bytes_to_read or max_result_bytes in its profile). " + narrow
	case qe.code == codeTooManyRowsOrBytes, qe.code == codeTooManyRows:
		return "rows", fmt.Sprintf("The query read or returned more rows than allowed (results: %d, flag -dash.max-rows; reads: max_rows_to_read in the user's profile). Ask for fewer rows (add a LIMIT in SQL), or: %s",
			s.cfg.MaxRows, narrow)
	}
	return "", ""
}
