package dash

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"

	"github.com/taillight/taillight/storage"
)

// filter is one of the page's filters: a request parameter passed, as a
// String, to every saved query that declares a parameter of that name
// ("" = not set). A new filter is one more entry here and one in the
// page's FILTERS list (web/app.js).
type filter struct {
	name string
	// check vets a value that is set; nil takes any (up to maxFilterBytes).
	check func(string) error
}

var filters = []filter{
	{name: "script"},
	{name: "namespace"}, // Workers for Platforms dispatch namespace
	{name: "worker_id"}, // Dynamic Worker id
	{name: "colo"},
	{name: "outcome"},
	{name: "search"},
	{name: "status_class", check: checkStatusClass},
	{name: "route"},
}

// statusClasses are the values of the status_class filter: the response
// status's hundreds, or none when there is no status (not a fetch, or no
// response).
var statusClasses = []string{"1xx", "2xx", "3xx", "4xx", "5xx", "none"}

func checkStatusClass(v string) error {
	for _, c := range statusClasses {
		if v == c {
			return nil
		}
	}
	return fmt.Errorf("want one of %v", statusClasses)
}

// maxSkipPages bounds the explorer's paging: skip may be at most this many
// times MaxRows (the subquery that picks a page sorts skip+limit
// coordinates, about 100 bytes each).
const maxSkipPages = 10

// explorerArgs parses the invocation explorer's parameters into args:
// skip (rows passed over, for paging), and the Kafka coordinates of one
// invocation (topic, partition, offset). Absent ones are zero, which
// matches no stored invocation's topic ("").
func (s *Server) explorerArgs(q url.Values, args storage.QueryArgs) error {
	parseUint := func(name string, limit uint64) (uint64, error) {
		v := q.Get(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > limit {
			return 0, fmt.Errorf("%s=%q: want 0..%d", name, v, limit)
		}
		return n, nil
	}
	var errs []error
	skip, err := parseUint("skip", uint64(maxSkipPages*s.cfg.MaxRows))
	errs = append(errs, err)
	partition, err := parseUint("partition", math.MaxInt32)
	errs = append(errs, err)
	offset, err := parseUint("offset", math.MaxUint64)
	errs = append(errs, err)
	topic := q.Get("topic")
	if len(topic) > maxFilterBytes {
		errs = append(errs, fmt.Errorf("topic is longer than %d bytes", maxFilterBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	args["skip"], args["partition"], args["offset"], args["topic"] = skip, partition, offset, topic
	return nil
}
