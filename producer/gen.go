package producer

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/taillight/taillight/schemas"
)

// GenConfig configures a Generator.
type GenConfig struct {
	// Seed selects the sequence: the same Seed, Start, Step and Scripts give
	// byte-identical items.
	Seed uint64
	// Start is the eventTimestamp of the first item. Required.
	Start time.Time
	// Step is the event-time distance between consecutive items (each item
	// is jittered within its step; about 2% arrive up to 2 minutes late).
	// Default 1ms.
	Step time.Duration
	// Scripts is the number of distinct Worker scripts. Default 24.
	Scripts int
}

// Truth is the ground truth of one generated item: what a correct pipeline
// must derive from it. Integration tests compute expected rollups from it.
type Truth struct {
	Index     int
	Kind      schemas.Kind
	Script    string
	Host      string // fetch only
	Method    string // fetch only
	Path      string // fetch only: the path as sent, IDs included
	Route     string // fetch only: Path with every planted ID segment as ":id"
	URL       string // fetch only, unredacted
	Colo      string // cf.colo, "unknown" when the request has no cf
	Outcome   string
	Status    int // response status, 0 when there is no response
	EventTime time.Time
	CPUTime   float64
	WallTime  float64
	// Error is the rollup definition: outcome != "ok" or status >= 500.
	Error bool
	// Secrets are planted values the default redaction policy must remove
	// (header values of authorization/cookie/x-api-key/…, hex and base-64
	// IDs and Luhn-valid card numbers in the URL).
	Secrets []string
	// Kept are planted look-alikes the default policy must keep (x-cookie
	// and x-password header values).
	Kept []string
	// OptIn are secrets in log messages that only opt-in rules remove.
	OptIn      []string
	Logs       int
	Exceptions int
	Bytes      int // encoded size
}

// Generator produces realistic synthetic TraceItems. It is not safe for
// concurrent use.
type Generator struct {
	cfg     GenConfig
	rng     *rand.Rand
	scripts []genScript
	cum     []float64 // cumulative script weights
	n       int
	hdr     []kv // reused header scratch
}

type kv struct{ k, v string }

type genScript struct {
	name    string
	host    string
	version string
	routes  []string
	kinds   []schemas.Kind // weighted: repeated entries
	queue   string
	cron    string
	doID    string
}

// NewGenerator returns a generator for cfg.
func NewGenerator(cfg GenConfig) (*Generator, error) {
	if cfg.Start.IsZero() {
		return nil, errors.New("generate: start time is required")
	}
	if cfg.Step == 0 {
		cfg.Step = time.Millisecond
	}
	if cfg.Scripts == 0 {
		cfg.Scripts = 24
	}
	if cfg.Step < 0 || cfg.Scripts < 0 {
		return nil, errors.New("generate: step and scripts must be positive")
	}
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x7a11119e))}
	total := 0.0
	for i := range cfg.Scripts {
		s := genScript{
			name:    scriptName(i),
			version: g.uuid(),
			queue:   queues[g.rng.IntN(len(queues))],
			cron:    crons[g.rng.IntN(len(crons))],
			doID:    g.hex(64),
		}
		s.host = strings.TrimSuffix(s.name, "-worker") + "." + domains[i%len(domains)]
		for _, j := range g.rng.Perm(len(routePool))[:3+g.rng.IntN(6)] {
			s.routes = append(s.routes, routePool[j])
		}
		s.kinds = slices.Repeat([]schemas.Kind{schemas.KindFetch}, 40)
		switch i % 6 {
		case 1:
			s.kinds = append(s.kinds, schemas.KindScheduled, schemas.KindScheduled, schemas.KindQueue, schemas.KindQueue, schemas.KindQueue)
		case 3:
			s.kinds = append(s.kinds, schemas.KindRPC, schemas.KindRPC, schemas.KindAlarm, schemas.KindScheduled)
		case 5:
			s.kinds = append(s.kinds, schemas.KindQueue, schemas.KindAlarm)
		}
		g.scripts = append(g.scripts, s)
		total += 1 / math.Pow(float64(i+1), 0.8) // a few busy scripts, a long tail
		g.cum = append(g.cum, total)
	}
	for i := range g.cum {
		g.cum[i] /= total
	}
	return g, nil
}

func scriptName(i int) string {
	n := scriptNames[i%len(scriptNames)]
	if k := i / len(scriptNames); k > 0 {
		n += "-" + strconv.Itoa(k+1)
	}
	return n + "-worker"
}

// Next appends the next item's JSON (no trailing newline) to dst and returns
// it with the item's ground truth.
func (g *Generator) Next(dst []byte) ([]byte, Truth) {
	r := g.rng
	i := g.n
	g.n++
	s := &g.scripts[g.pickScript()]
	tr := Truth{Index: i, Script: s.name, Kind: s.kinds[r.IntN(len(s.kinds))], Colo: "unknown"}

	ts := g.cfg.Start.UnixMilli() + (int64(i)*int64(g.cfg.Step)+r.Int64N(int64(g.cfg.Step)))/int64(time.Millisecond)
	if r.IntN(50) == 0 {
		ts -= 1000 + r.Int64N(120000) // late arrival
	}
	tr.EventTime = time.UnixMilli(ts)

	tr.Outcome = pickWeighted(r, outcomes)
	cpu := float64(1 + int(r.ExpFloat64()*4))
	wall := cpu + float64(int(r.ExpFloat64()*35))
	switch tr.Outcome {
	case "exceededCpu":
		cpu = float64(50 + r.IntN(350))
		wall = cpu + float64(r.IntN(100))
	case "canceled":
		wall += float64(r.IntN(30000))
	}
	tr.CPUTime, tr.WallTime = cpu, wall

	start := len(dst)
	b := append(dst, `{"wallTime":`...)
	b = strconv.AppendFloat(b, wall, 'f', -1, 64)
	b = append(b, `,"cpuTime":`...)
	b = strconv.AppendFloat(b, cpu, 'f', -1, 64)
	b = append(b, `,"truncated":false,"executionModel":`...)
	if tr.Kind == schemas.KindAlarm {
		b = append(b, `"durableObject"`...)
	} else {
		b = append(b, `"stateless"`...)
	}
	b = append(b, `,"outcome":`...)
	b = appendString(b, tr.Outcome)
	if tr.Kind == schemas.KindAlarm {
		b = append(b, `,"durableObjectId":`...)
		b = appendString(b, s.doID)
		b = append(b, `,"entrypoint":"Counter"`...)
	}
	if tr.Kind == schemas.KindRPC {
		b = append(b, `,"entrypoint":"Rpc"`...)
	}
	b = append(b, `,"scriptVersion":{"id":`...)
	b = appendString(b, s.version)
	b = append(b, `},"scriptName":`...)
	b = appendString(b, s.name)
	b = append(b, `,"diagnosticsChannelEvents":[],"exceptions":[`...)
	b = g.exceptions(b, &tr, ts)
	b = append(b, `],"logs":[`...)
	b = g.logs(b, &tr, ts)
	b = append(b, `],"eventTimestamp":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"event":`...)
	switch tr.Kind {
	case schemas.KindFetch:
		b = g.fetch(b, s, &tr)
	case schemas.KindScheduled:
		b = append(b, `{"cron":`...)
		b = appendString(b, s.cron)
		b = append(b, `,"scheduledTime":`...)
		b = strconv.AppendInt(b, ts-ts%60000, 10)
		b = append(b, '}')
	case schemas.KindQueue:
		b = append(b, `{"batchSize":`...)
		b = strconv.AppendInt(b, int64(1+r.IntN(100)), 10)
		b = append(b, `,"queue":`...)
		b = appendString(b, s.queue)
		b = append(b, '}')
	case schemas.KindRPC:
		b = append(b, `{"rpcMethod":`...)
		b = appendString(b, rpcMethods[r.IntN(len(rpcMethods))])
		b = append(b, '}')
	case schemas.KindAlarm:
		b = append(b, `{"scheduledTime":`...)
		b = appendString(b, time.UnixMilli(ts).UTC().Format("2006-01-02T15:04:05.000Z"))
		b = append(b, '}')
	}
	b = append(b, '}')
	tr.Error = tr.Outcome != "ok" || tr.Status >= 500
	tr.Bytes = len(b) - start
	return b, tr
}

func (g *Generator) pickScript() int {
	x := g.rng.Float64()
	i, _ := slices.BinarySearch(g.cum, x)
	return min(i, len(g.cum)-1)
}

func (g *Generator) fetch(b []byte, s *genScript, tr *Truth) []byte {
	r := g.rng
	tr.Host = s.host
	tr.Method = pickWeighted(r, methods)
	tmpl := s.routes[r.IntN(len(s.routes))]
	var path, route strings.Builder
	for seg := range strings.SplitSeq(strings.TrimPrefix(tmpl, "/"), "/") {
		path.WriteByte('/')
		route.WriteByte('/')
		id := ""
		switch seg {
		case "{num}":
			id = strconv.Itoa(1 + r.IntN(9_999_999))
		case "{uuid}":
			id = g.uuid()
		case "{hex}":
			id = g.hex(32 + 8*r.IntN(5))
		case "{b64}":
			id = g.base64ID(22 + r.IntN(12))
		}
		if id == "" {
			path.WriteString(seg)
			route.WriteString(seg)
			continue
		}
		path.WriteString(id)
		route.WriteString(":id")
		if seg != "{num}" {
			tr.Secrets = append(tr.Secrets, id)
		}
	}
	tr.Path, tr.Route = path.String(), route.String()
	url := "https://" + s.host + tr.Path
	switch q := r.IntN(20); {
	case q < 2:
		v := g.hex(32)
		url += "?session=" + v
		tr.Secrets = append(tr.Secrets, v)
	case q < 4:
		v := g.base64ID(24 + r.IntN(16))
		url += "?token=" + v + "&lang=en"
		tr.Secrets = append(tr.Secrets, v)
	case q < 5:
		v := g.card()
		url += "?card=" + v
		tr.Secrets = append(tr.Secrets, v)
	case q < 8:
		url += "?page=" + strconv.Itoa(1+r.IntN(40)) + "&sort=desc"
	case q < 9:
		url += "?utm_source=newsletter&utm_medium=email"
	}
	tr.URL = url

	h := g.hdr[:0]
	h = append(h,
		kv{"accept", accepts[r.IntN(len(accepts))]},
		kv{"accept-encoding", "gzip, br"},
		kv{"cf-connecting-ip", g.ip()},
		kv{"host", s.host},
		kv{"user-agent", userAgents[r.IntN(len(userAgents))]},
		kv{"x-forwarded-proto", "https"},
	)
	if r.IntN(2) == 0 {
		h = append(h, kv{"accept-language", "en-US,en;q=0.9"})
	}
	if tr.Method == "POST" || tr.Method == "PUT" || tr.Method == "PATCH" {
		h = append(h, kv{"content-type", "application/json"}, kv{"content-length", strconv.Itoa(20 + r.IntN(4000))})
	}
	plant := func(name, value string, keep bool) {
		h = append(h, kv{name, value})
		if keep {
			tr.Kept = append(tr.Kept, value)
		} else {
			tr.Secrets = append(tr.Secrets, value)
		}
	}
	if r.IntN(10) < 3 {
		plant("authorization", "Bearer "+g.jwt(), false)
	}
	if r.IntN(4) == 0 {
		plant("cookie", "session="+g.hex(40)+"; theme=dark", false)
	}
	if r.IntN(10) == 0 {
		plant("x-api-key", "sk_live_"+g.base64ID(28), false)
	}
	if r.IntN(25) == 0 {
		plant("x-auth-token", g.hex(24), false)
	}
	if r.IntN(20) == 0 {
		plant("x-cookie", "pref=compact-"+strconv.Itoa(r.IntN(1000)), true)
	}
	if r.IntN(33) == 0 {
		plant("x-password", "hunter"+strconv.Itoa(r.IntN(100)), true)
	}
	slices.SortFunc(h, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	g.hdr = h

	b = append(b, `{"request":{"url":`...)
	b = appendString(b, url)
	b = append(b, `,"method":`...)
	b = appendString(b, tr.Method)
	b = append(b, `,"headers":{`...)
	for j, x := range h {
		if j > 0 {
			b = append(b, ',')
		}
		b = appendString(b, x.k)
		b = append(b, ':')
		b = appendString(b, x.v)
	}
	b = append(b, '}')
	if r.IntN(100) != 0 { // service-binding fetches carry no cf
		c := &colos[r.IntN(len(colos))]
		tr.Colo = c.code
		b = append(b, `,"cf":{"asn":`...)
		b = strconv.AppendInt(b, int64(asns[r.IntN(len(asns))]), 10)
		b = append(b, `,"city":`...)
		b = appendString(b, c.city)
		b = append(b, `,"clientTcpRtt":`...)
		b = strconv.AppendInt(b, int64(1+r.IntN(180)), 10)
		b = append(b, `,"colo":`...)
		b = appendString(b, c.code)
		b = append(b, `,"country":`...)
		b = appendString(b, c.country)
		b = append(b, `,"httpProtocol":`...)
		b = appendString(b, protocols[r.IntN(len(protocols))])
		b = append(b, `,"timezone":`...)
		b = appendString(b, c.tz)
		b = append(b, `,"tlsVersion":"TLSv1.3"}`...)
	}
	b = append(b, '}')
	if tr.Outcome == "ok" {
		tr.Status = pickWeighted(r, statuses)
		b = append(b, `,"response":{"status":`...)
		b = strconv.AppendInt(b, int64(tr.Status), 10)
		b = append(b, '}')
	}
	return append(b, '}')
}

func (g *Generator) exceptions(b []byte, tr *Truth, ts int64) []byte {
	r := g.rng
	n := 0
	switch {
	case tr.Outcome == "exception":
		n = 1
	case tr.Outcome == "ok" && r.IntN(100) == 0: // a rejected waitUntil
		n = 1
	}
	for range n {
		e := &errs[r.IntN(len(errs))]
		b = append(b, `{"stack":`...)
		b = appendString(b, "    at Object.fetch (index.js:"+strconv.Itoa(10+r.IntN(400))+":"+strconv.Itoa(1+r.IntN(60))+")\n    at async handle (router.js:"+strconv.Itoa(10+r.IntN(200))+":9)")
		b = append(b, `,"name":`...)
		b = appendString(b, e.name)
		b = append(b, `,"message":`...)
		b = appendString(b, e.msg)
		b = append(b, `,"timestamp":`...)
		b = strconv.AppendInt(b, ts+int64(tr.WallTime), 10)
		b = append(b, '}')
	}
	tr.Exceptions = n
	return b
}

func (g *Generator) logs(b []byte, tr *Truth, ts int64) []byte {
	r := g.rng
	n := r.IntN(5)
	for j := range n {
		if j > 0 {
			b = append(b, ',')
		}
		level := "log"
		b = append(b, `{"message":[`...)
		switch k := r.IntN(6); k {
		case 0:
			b = appendString(b, "request handled")
			b = append(b, `,{"route":`...)
			b = appendString(b, tr.Route)
			b = append(b, `,"ms":`...)
			b = strconv.AppendInt(b, int64(r.IntN(900)), 10)
			b = append(b, `,"cache":`...)
			b = appendString(b, []string{"HIT", "MISS", "EXPIRED"}[r.IntN(3)])
			b = append(b, '}')
		case 1:
			level = "debug"
			b = appendString(b, "kv lookup")
			b = append(b, ',')
			b = appendString(b, "user:"+strconv.Itoa(r.IntN(100000)))
			b = append(b, `,null`...)
		case 2:
			level = "warn"
			b = appendString(b, "slow upstream")
			b = append(b, `,{"upstream":"origin","ms":`...)
			b = strconv.AppendInt(b, int64(1000+r.IntN(9000)), 10)
			b = append(b, `,"retry":true}`...)
		case 3:
			level = "error"
			b = appendString(b, "D1_ERROR: database is locked: SQLITE_BUSY")
		case 4:
			level = "info"
			email := strings.ToLower(firstNames[r.IntN(len(firstNames))]) + strconv.Itoa(r.IntN(100)) + "@example.com"
			b = appendString(b, "user signed in: "+email)
			tr.OptIn = append(tr.OptIn, email)
		case 5:
			b = appendString(b, "feature flags")
			b = append(b, `,["new-checkout","dark-mode"],`...)
			b = strconv.AppendFloat(b, float64(r.IntN(1000))/10, 'f', -1, 64)
		}
		b = append(b, `],"level":`...)
		b = appendString(b, level)
		b = append(b, `,"timestamp":`...)
		b = strconv.AppendInt(b, ts+int64(j)*int64(tr.WallTime)/int64(n), 10) // in order, within the invocation
		b = append(b, '}')
	}
	tr.Logs = n
	return b
}

const hexDigits = "0123456789abcdef"

func (g *Generator) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = hexDigits[g.rng.IntN(16)]
	}
	return string(b)
}

func (g *Generator) uuid() string {
	h := g.hex(32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

// base64ID returns an n-character URL-safe base-64 ID with at least two
// digits, two upper- and two lower-case letters (so the URL rule holds).
func (g *Generator) base64ID(n int) string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alpha[g.rng.IntN(len(alpha))]
	}
	pos := g.rng.Perm(n)
	for i, set := range []string{"0123456789", "0123456789", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz"} {
		b[pos[i]] = set[g.rng.IntN(len(set))]
	}
	return string(b)
}

// card returns a Luhn-valid 16-digit card number, sometimes dash-grouped.
func (g *Generator) card() string {
	d := make([]byte, 16)
	d[0] = "45"[g.rng.IntN(2)]
	for i := 1; i < 15; i++ {
		d[i] = byte('0' + g.rng.IntN(10))
	}
	d[15] = '0' + luhnCheck(d[:15])
	if g.rng.IntN(2) == 0 {
		return string(d[:4]) + "-" + string(d[4:8]) + "-" + string(d[8:12]) + "-" + string(d[12:])
	}
	return string(d)
}

// luhnCheck returns the check digit that makes payload+digit Luhn-valid.
func luhnCheck(payload []byte) byte {
	sum := 0
	for i := len(payload) - 1; i >= 0; i-- {
		v := int(payload[i] - '0')
		if (len(payload)-1-i)%2 == 0 { // doubled: it sits left of the check digit
			if v *= 2; v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return byte((10 - sum%10) % 10)
}

// jwt returns a JWT-shaped token (header.payload.signature).
func (g *Generator) jwt() string {
	return "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + g.base64ID(36) + "." + g.base64ID(43)
}

func (g *Generator) ip() string {
	r := g.rng
	if r.IntN(5) == 0 {
		return "2a01:4f8:" + strconv.FormatInt(int64(r.IntN(0xffff)), 16) + "::" + strconv.FormatInt(int64(1+r.IntN(0xfff)), 16)
	}
	return strconv.Itoa(1+r.IntN(222)) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(1+r.IntN(254))
}

type weighted[T any] struct {
	v T
	w int
}

func pickWeighted[T any](r *rand.Rand, ws []weighted[T]) T {
	total := 0
	for _, w := range ws {
		total += w.w
	}
	x := r.IntN(total)
	for _, w := range ws {
		if x -= w.w; x < 0 {
			return w.v
		}
	}
	return ws[len(ws)-1].v
}

// appendString appends s as a JSON string. Inputs are valid UTF-8; only the
// characters JSON requires are escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		case c >= utf8.RuneSelf:
			_, n := utf8.DecodeRuneInString(s[i:])
			b = append(b, s[i:i+n]...)
			i += n
			continue
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}

var (
	scriptNames = []string{"api-gateway", "auth", "checkout", "images", "search", "cart", "notifications",
		"profile", "assets", "graphql", "webhooks", "feature-flags", "geo", "ratelimit", "sessions",
		"media", "inventory", "pricing", "orders", "reports", "admin", "payments", "emails", "landing"}
	domains   = []string{"example.com", "shop.example", "acme.dev", "example.net"}
	queues    = []string{"emails", "thumbnails", "webhooks-out", "audit-log", "search-index"}
	crons     = []string{"*/5 * * * *", "0 * * * *", "*/1 * * * *", "30 2 * * *"}
	routePool = []string{
		"/", "/health", "/login", "/logout", "/graphql", "/v2/search", "/static/app.js", "/favicon.ico",
		"/v1/users/{num}", "/v1/users/{num}/orders/{num}", "/v1/orders/{uuid}", "/api/items/{num}/reviews",
		"/api/carts/{uuid}/items/{num}", "/objects/{hex}", "/v1/sessions/{hex}", "/share/{b64}",
		"/products/blue-running-shoes", "/products/{num}", "/webhooks/stripe", "/invoices/{uuid}/pdf",
		"/api/v3/accounts/{num}/members/{uuid}", "/download/{b64}/file", "/img/{hex}/thumb",
	}
	rpcMethods = []string{"getUser", "charge", "lookup", "enqueue", "render"}
	methods    = []weighted[string]{{"GET", 70}, {"POST", 15}, {"PUT", 4}, {"DELETE", 3}, {"PATCH", 3}, {"OPTIONS", 3}, {"HEAD", 2}}
	outcomes   = []weighted[string]{{"ok", 915}, {"exception", 40}, {"exceededCpu", 15}, {"canceled", 15}, {"exceededMemory", 5}, {"unknown", 5}, {"responseStreamDisconnected", 5}}
	statuses   = []weighted[int]{{200, 700}, {201, 40}, {204, 30}, {301, 15}, {302, 20}, {304, 50}, {400, 20}, {401, 20},
		{403, 15}, {404, 50}, {429, 10}, {500, 15}, {502, 5}, {503, 10}}
	accepts    = []string{"*/*", "application/json", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "image/avif,image/webp,*/*"}
	userAgents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
		"curl/8.5.0", "okhttp/4.12.0", "python-requests/2.32.3", "Go-http-client/2.0",
	}
	protocols  = []string{"HTTP/2", "HTTP/3", "HTTP/1.1"}
	asns       = []int{3320, 7922, 13335, 16509, 15169, 3209, 2856, 4134, 9808, 12322}
	firstNames = []string{"Alice", "Bob", "Chen", "Dara", "Emre", "Fatima", "Goran", "Hana"}
	errs       = []struct{ name, msg string }{
		{"TypeError", "Cannot read properties of undefined (reading 'id')"},
		{"Error", "upstream returned 502"},
		{"RangeError", "Maximum call stack size exceeded"},
		{"SyntaxError", "Unexpected token '<', \"<!DOCTYPE \"... is not valid JSON"},
		{"Error", "D1_ERROR: no such table: sessions"},
	}
	colos = []struct{ code, city, country, tz string }{
		{"FRA", "Frankfurt am Main", "DE", "Europe/Berlin"}, {"AMS", "Amsterdam", "NL", "Europe/Amsterdam"},
		{"LHR", "London", "GB", "Europe/London"}, {"CDG", "Paris", "FR", "Europe/Paris"},
		{"MAD", "Madrid", "ES", "Europe/Madrid"}, {"WAW", "Warsaw", "PL", "Europe/Warsaw"},
		{"ARN", "Stockholm", "SE", "Europe/Stockholm"}, {"MXP", "Milan", "IT", "Europe/Rome"},
		{"IAD", "Ashburn", "US", "America/New_York"}, {"EWR", "Newark", "US", "America/New_York"},
		{"ORD", "Chicago", "US", "America/Chicago"}, {"DFW", "Dallas", "US", "America/Chicago"},
		{"LAX", "Los Angeles", "US", "America/Los_Angeles"}, {"SJC", "San Jose", "US", "America/Los_Angeles"},
		{"SEA", "Seattle", "US", "America/Los_Angeles"}, {"YYZ", "Toronto", "CA", "America/Toronto"},
		{"GRU", "São Paulo", "BR", "America/Sao_Paulo"}, {"SCL", "Santiago", "CL", "America/Santiago"},
		{"NRT", "Tokyo", "JP", "Asia/Tokyo"}, {"ICN", "Seoul", "KR", "Asia/Seoul"},
		{"SIN", "Singapore", "SG", "Asia/Singapore"}, {"HKG", "Hong Kong", "HK", "Asia/Hong_Kong"},
		{"BOM", "Mumbai", "IN", "Asia/Kolkata"}, {"SYD", "Sydney", "AU", "Australia/Sydney"},
		{"JNB", "Johannesburg", "ZA", "Africa/Johannesburg"}, {"DXB", "Dubai", "AE", "Asia/Dubai"},
	}
)
