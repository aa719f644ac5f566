package grafana

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/taillight/taillight/storage"
)

var update = flag.Bool("update", false, "rewrite dashboards/taillight.json from storage/queries")

const dashboardFile = "dashboards/taillight.json"

// TestDashboardUpToDate fails when the committed JSON is not what the saved
// queries generate (run with -update to regenerate).
func TestDashboardUpToDate(t *testing.T) {
	qs, err := storage.Queries()
	if err != nil {
		t.Fatal(err)
	}
	want, err := Dashboard(qs)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(dashboardFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go test ./deployments/grafana -update", dashboardFile)
	}
}

// TestDashboardJSON validates the committed file on its own: it parses,
// every panel's SQL is a saved query after undoing the macros, every panel
// and variable uses the provisioned data source, and the layout is sane.
func TestDashboardJSON(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Query      string `json:"query"`
				Datasource *struct {
					Type, UID string
				} `json:"datasource"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource struct {
				Type, UID string
			} `json:"datasource"`
			GridPos struct{ H, W, X, Y int } `json:"gridPos"`
			Targets []struct {
				RefID      string `json:"refId"`
				Datasource struct {
					Type, UID string
				} `json:"datasource"`
				RawSQL string `json:"rawSql"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		// Unknown fields are fine for Grafana, but this test must see them all.
		if !strings.Contains(err.Error(), "unknown field") {
			t.Fatalf("%s does not parse: %v", dashboardFile, err)
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s does not parse: %v", dashboardFile, err)
		}
	}
	uid := provisionedUID(t)
	qs, err := storage.Queries()
	if err != nil {
		t.Fatal(err)
	}
	saved := map[string]string{}
	for _, q := range qs {
		saved[q.SQL] = q.Name
	}
	seen := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Datasource.Type != DatasourceType || p.Datasource.UID != uid {
			t.Errorf("panel %q data source %+v; want %s %s", p.Title, p.Datasource, DatasourceType, uid)
		}
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q grid position %+v out of the 24-column grid", p.Title, p.GridPos)
		}
		if len(p.Targets) != 1 {
			t.Fatalf("panel %q has %d targets; want 1", p.Title, len(p.Targets))
		}
		tg := p.Targets[0]
		if tg.Datasource.UID != uid {
			t.Errorf("panel %q target data source uid %q; want %q", p.Title, tg.Datasource.UID, uid)
		}
		name, ok := saved[FromGrafana(tg.RawSQL)]
		if !ok {
			t.Errorf("panel %q SQL is no saved query after macro substitution:\n%s", p.Title, tg.RawSQL)
			continue
		}
		if leftover.MatchString(tg.RawSQL) {
			t.Errorf("panel %q SQL still has a taillight placeholder:\n%s", p.Title, tg.RawSQL)
		}
		seen[name] = true
	}
	for _, q := range qs {
		if seen[q.Name] != q.Panel {
			t.Errorf("saved query %s: panel %v, has a Grafana panel %v", q.Name, q.Panel, seen[q.Name])
		}
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != uid) {
			t.Errorf("variable %s does not use the provisioned data source", v.Name)
		}
	}
	// Every ${var} a panel or variable uses is defined.
	ref := regexp.MustCompile(`\$\{([a-z_]+)(:[a-z]+)?\}`)
	for _, m := range ref.FindAllStringSubmatch(string(raw), -1) {
		if !vars[m[1]] {
			t.Errorf("${%s} is used but not a dashboard variable", m[1])
		}
	}
}

// provisionedUID reads the uid of the provisioned data source.
func provisionedUID(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("provisioning/datasources/taillight-clickhouse.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s+uid:\s*(\S+)\s*$`).FindSubmatch(b)
	typ := regexp.MustCompile(`(?m)^\s+type:\s*(\S+)\s*$`).FindSubmatch(b)
	if m == nil || typ == nil || string(typ[1]) != DatasourceType {
		t.Fatalf("provisioning file lacks uid or type %s", DatasourceType)
	}
	if string(m[1]) != DatasourceUID {
		t.Fatalf("provisioned uid %q; the generator uses %q", m[1], DatasourceUID)
	}
	return string(m[1])
}

func TestSQLRoundTrip(t *testing.T) {
	qs, err := storage.Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if !q.Panel {
			continue
		}
		g, err := SQL(&q)
		if err != nil {
			t.Fatal(err)
		}
		if back := FromGrafana(g); back != q.SQL {
			t.Errorf("%s: macros do not round-trip:\n%s\n!=\n%s", q.Name, back, q.SQL)
		}
	}
}
