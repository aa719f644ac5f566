// Package grafana builds the Grafana dashboard (dashboards/taillight.json)
// from the saved queries in storage/queries, for the official ClickHouse
// data source plugin (grafana-clickhouse-datasource) provisioned by
// provisioning/datasources/taillight-clickhouse.yaml. The JSON file is
// generated: `go test ./deployments/grafana -update` rewrites it, and the
// test fails when it differs from what the saved queries give.
package grafana

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/taillight/taillight/storage"
)

// Data source identity, shared with the provisioning file.
const (
	DatasourceType = "grafana-clickhouse-datasource"
	DatasourceUID  = "taillight-clickhouse"
	DashboardUID   = "taillight"
)

// Macros maps each saved-query placeholder to its Grafana form: the
// plugin's time macros, and dashboard variables (string filters through
// Grafana's sqlstring format, which quotes and doubles single quotes).
var Macros = []struct{ Placeholder, Grafana string }{
	{storage.PlaceholderDatabase, "${database}"},
	{"{from:DateTime}", "$__fromTime"},
	{"{to:DateTime}", "$__toTime"},
	{"{step:UInt32}", "$__interval_s"},
	{"{limit:UInt32}", "${limit}"},
	{"{script:String}", "${script:sqlstring}"},
	{"{namespace:String}", "${namespace:sqlstring}"},
	{"{worker_id:String}", "${worker_id:sqlstring}"},
	{"{colo:String}", "${colo:sqlstring}"},
	{"{outcome:String}", "${outcome:sqlstring}"},
	{"{search:String}", "${search:sqlstring}"},
}

var leftover = regexp.MustCompile(`\{\{|(^|[^$])\{[a-z_][a-z0-9_]*:[A-Za-z0-9]+\}`)

// SQL returns q's statement with Grafana macros for its placeholders.
func SQL(q *storage.Query) (string, error) {
	s := q.SQL
	for _, m := range Macros {
		s = strings.ReplaceAll(s, m.Placeholder, m.Grafana)
	}
	if leftover.MatchString(s) {
		return "", fmt.Errorf("query %s: a placeholder has no Grafana macro: %s", q.Name, s)
	}
	return s, nil
}

// FromGrafana undoes SQL: the saved query's text from a panel's rawSql.
func FromGrafana(rawSQL string) string {
	for _, m := range Macros {
		rawSQL = strings.ReplaceAll(rawSQL, m.Grafana, m.Placeholder)
	}
	return rawSQL
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type target struct {
	RefID      string     `json:"refId"`
	Datasource datasource `json:"datasource"`
	EditorType string     `json:"editorType"`
	QueryType  string     `json:"queryType"`
	// Format is the plugin's result format: 0 time series (long results
	// are turned wide, one series per label), 1 table.
	Format int    `json:"format"`
	RawSQL string `json:"rawSql"`
}

type gridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  datasource     `json:"datasource"`
	GridPos     gridPos        `json:"gridPos"`
	Interval    string         `json:"interval,omitempty"`
	Options     map[string]any `json:"options,omitempty"`
	// Transformations turn a long result (label, series, value) into the
	// wide frame a stacked bar chart reads.
	Transformations []any    `json:"transformations,omitempty"`
	Targets         []target `json:"targets"`
}

type variable struct {
	Name        string         `json:"name"`
	Label       string         `json:"label"`
	Type        string         `json:"type"`
	Hide        int            `json:"hide"`
	Query       string         `json:"query"`
	Datasource  *datasource    `json:"datasource,omitempty"`
	Refresh     int            `json:"refresh,omitempty"`
	Current     map[string]any `json:"current"`
	Options     []any          `json:"options"`
	AllowCustom *bool          `json:"allowCustomValue,omitempty"`
}

type dashboard struct {
	UID           string            `json:"uid"`
	Title         string            `json:"title"`
	Description   string            `json:"description"`
	Tags          []string          `json:"tags"`
	Timezone      string            `json:"timezone"`
	SchemaVersion int               `json:"schemaVersion"`
	Editable      bool              `json:"editable"`
	Refresh       string            `json:"refresh"`
	Time          map[string]string `json:"time"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

// panelOrder is the layout: stat first, then charts in pairs, tables last.
var panelOrder = []string{"overview", "errors_per_endpoint", "outcomes_per_script", "top_failing_routes",
	"requests_per_colo", "script_time", "recent_exceptions", "log_search"}

// Dashboard returns the dashboard JSON for queries: one panel for each
// query that is a panel (the invocation explorer's are not).
func Dashboard(queries []storage.Query) ([]byte, error) {
	ds := datasource{Type: DatasourceType, UID: DatasourceUID}
	var d dashboard
	d.UID = DashboardUID
	d.Title = "taillight"
	d.Description = "Cloudflare Workers trace events in ClickHouse. Generated from storage/queries by deployments/grafana; do not edit by hand."
	d.Tags = []string{"taillight", "cloudflare-workers", "clickhouse"}
	d.Timezone = "browser"
	d.SchemaVersion = 39
	d.Editable = true
	d.Refresh = "30s"
	d.Time = map[string]string{"from": "now-1h", "to": "now"}
	f := false
	picker := func(name, label, column, view string) variable {
		return variable{
			Name: name, Label: label, Type: "query", Datasource: &ds, Refresh: 2, AllowCustom: &f,
			// The empty value means "all", as in the saved queries.
			Query:   fmt.Sprintf("SELECT arrayJoin(arrayConcat([''], groupUniqArray(%s))) AS v FROM ${database}.%s WHERE minute >= $__fromTime AND minute < $__toTime ORDER BY v", column, view),
			Current: map[string]any{"text": "", "value": ""}, Options: []any{},
		}
	}
	d.Templating.List = []variable{
		{Name: "database", Label: "Database", Type: "constant", Hide: 2, Query: "taillight",
			Current: map[string]any{"text": "taillight", "value": "taillight"}, Options: []any{}},
		picker("script", "Script", "script_name", "script_outcomes_1m"),
		picker("namespace", "Namespace", "dispatch_namespace", "script_outcomes_1m"),
		picker("worker_id", "Worker", "worker_id", "script_outcomes_1m"),
		picker("colo", "Colo", "colo", "colo_requests_1m"),
		picker("outcome", "Outcome", "outcome", "script_outcomes_1m"),
		{Name: "search", Label: "Log search", Type: "textbox", Query: "",
			Current: map[string]any{"text": "", "value": ""}, Options: []any{}},
		{Name: "limit", Label: "Rows", Type: "custom", Query: "10,20,50,100",
			Current: map[string]any{"text": "20", "value": "20"}, Options: []any{}},
	}
	byName := map[string]*storage.Query{}
	for i := range queries {
		if queries[i].Panel {
			byName[queries[i].Name] = &queries[i]
		}
	}
	var ordered []*storage.Query
	for _, n := range panelOrder {
		if q, ok := byName[n]; ok {
			ordered = append(ordered, q)
			delete(byName, n)
		}
	}
	for i := range queries {
		if _, ok := byName[queries[i].Name]; ok && queries[i].Panel {
			ordered = append(ordered, &queries[i])
		}
	}
	x, y, rowH := 0, 0, 0
	for i, q := range ordered {
		sql, err := SQL(q)
		if err != nil {
			return nil, err
		}
		p := panel{ID: i + 1, Title: q.Title, Description: q.Description, Datasource: ds}
		t := target{RefID: "A", Datasource: ds, EditorType: "sql", QueryType: "table", Format: 1, RawSQL: sql}
		w, h := 12, 9
		switch q.Chart {
		case storage.ChartLine:
			p.Type = "timeseries"
			p.Interval = "1m" // the rollups' resolution
			t.QueryType, t.Format = "timeseries", 0
		case storage.ChartBar:
			p.Type = "barchart"
			p.Options = map[string]any{"orientation": "horizontal", "xField": q.X, "showValue": "always"}
			if q.Series != "" {
				p.Options["stacking"] = "normal"
				p.Transformations = []any{map[string]any{"id": "groupingToMatrix",
					"options": map[string]any{"rowField": q.X, "columnField": q.Series, "valueField": q.Y}}}
			}
		case storage.ChartStat:
			p.Type = "stat"
			w, h = 24, 4
		default:
			p.Type = "table"
			w = 24
		}
		if x+w > 24 {
			x, y, rowH = 0, y+rowH, 0
		}
		p.GridPos = gridPos{H: h, W: w, X: x, Y: y}
		x += w
		rowH = max(rowH, h)
		p.Targets = []target{t}
		d.Panels = append(d.Panels, p)
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
