package chsink

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/taillight/taillight/sinks"
)

// Error reasons: the fixed label values of taillight_chsink_errors_total.
const (
	ReasonSchema   = "schema"   // missing table or column, type mismatch, bad SQL: never succeeds until an operator acts
	ReasonAuth     = "auth"     // authentication or permission refused: ditto
	ReasonInvalid  = "invalid"  // the caller passed an invalid block: a bug; wraps sinks.ErrSchema too
	ReasonNetwork  = "network"  // connection refused, reset, closed, EOF
	ReasonTimeout  = "timeout"  // dial, read or context deadline
	ReasonServer   = "server"   // any other server exception (overload, too many parts, memory)
	ReasonCanceled = "canceled" // the caller's context was cancelled
	ReasonOther    = "other"    // anything else; treated as transient
)

// Server exception codes that no retry can fix.
var schemaCodes = map[int32]bool{
	7:  true, // INCORRECT_NUMBER_OF_COLUMNS
	8:  true, // THERE_IS_NO_COLUMN
	10: true, // NOT_FOUND_COLUMN_IN_BLOCK
	16: true, // NO_SUCH_COLUMN_IN_TABLE
	43: true, // ILLEGAL_TYPE_OF_ARGUMENT
	44: true, // ILLEGAL_COLUMN
	47: true, // UNKNOWN_IDENTIFIER
	50: true, // UNKNOWN_TYPE
	53: true, // TYPE_MISMATCH
	60: true, // UNKNOWN_TABLE
	62: true, // SYNTAX_ERROR
	70: true, // CANNOT_CONVERT_TYPE
	81: true, // UNKNOWN_DATABASE
}

var authCodes = map[int32]bool{
	164: true, // READONLY
	192: true, // UNKNOWN_USER
	193: true, // WRONG_PASSWORD
	291: true, // DATABASE_ACCESS_DENIED
	497: true, // ACCESS_DENIED
	516: true, // AUTHENTICATION_FAILED
}

var errInvalidBlock = errors.New("invalid block")

// Reason maps err to one of the Reason* values (and "" for nil).
func Reason(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, errInvalidBlock) {
		return ReasonInvalid
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		switch {
		case schemaCodes[ex.Code]:
			return ReasonSchema
		case authCodes[ex.Code]:
			return ReasonAuth
		case ex.Code == 159 || ex.Code == 209: // TIMEOUT_EXCEEDED, SOCKET_TIMEOUT
			return ReasonTimeout
		case ex.Code == 210 || ex.Code == 279: // NETWORK_ERROR, ALL_CONNECTION_TRIES_FAILED
			return ReasonNetwork
		}
		return ReasonServer
	}
	// The driver's conversion errors: a Go slice that does not fit the
	// column type means the table's schema is not the one this code wrote.
	var convErr *column.ColumnConverterError
	var typeErr *column.UnsupportedColumnTypeError
	var colErr *column.Error
	if errors.As(err, &convErr) || errors.As(err, &typeErr) || errors.As(err, &colErr) {
		return ReasonSchema
	}
	if errors.Is(err, sinks.ErrSchema) {
		return ReasonSchema
	}
	if errors.Is(err, context.Canceled) {
		return ReasonCanceled
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, clickhouse.ErrAcquireConnTimeout) {
		return ReasonTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	if ne != nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, clickhouse.ErrConnectionClosed) {
		return ReasonNetwork
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return ReasonNetwork
	}
	return ReasonOther
}

// IsTransient reports whether retrying the same call later may succeed:
// true for network, timeout, server-load and unclassified errors; false for
// nil, for schema, auth and invalid-block errors (which Write returns
// wrapping sinks.ErrSchema) and for a cancelled context.
func IsTransient(err error) bool {
	switch Reason(err) {
	case ReasonNetwork, ReasonTimeout, ReasonServer, ReasonOther:
		return true
	}
	return false
}

// classify wraps err with the step, and a permanent err also with
// sinks.ErrSchema so callers can branch with errors.Is.
func classify(step string, err error) error {
	switch Reason(err) {
	case ReasonSchema, ReasonAuth:
		if !errors.Is(err, sinks.ErrSchema) {
			return fmt.Errorf("%s: %w: %w", step, sinks.ErrSchema, err)
		}
	}
	return fmt.Errorf("%s: %w", step, err)
}
