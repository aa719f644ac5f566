// Package deploy checks the deployment files (the Dockerfile at the repo
// root, deployments/compose, k8s, grafana and local) against the binary
// they deploy. The tests run in deployments/ (TestMain changes there), so
// paths read as they do in that directory.
package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/taillight/taillight/internal/testenv"
)

// repoRoot is the module root, seen from this package's directory.
const repoRoot = ".."

func e2e() bool { return testenv.E2E() }

// missing skips the test with what is missing and how to get it, or fails it
// under TAILLIGHT_E2E=1.
func missing(t testing.TB, what string) {
	t.Helper()
	if e2e() {
		t.Fatalf("TAILLIGHT_E2E=1 and %s", what)
	}
	t.Skipf("%s (set TAILLIGHT_E2E=1 to make this a failure)", what)
}

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper-case: FROM, RUN, …
	args string
}

func parseDockerfile(t testing.TB, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasPrefix(line, "#") { // a comment inside a continuation
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{start, strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: unterminated continuation from line %d", path, start)
	}
	return out
}

// goModMinor is "1.26" for `go 1.26.8` in go.mod.
func goModMinor(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod: no go directive")
	}
	return string(m[1])
}

// imagePinned reports why an image reference is not pinned ("" when it is).
func imagePinned(ref string) string {
	if strings.Contains(ref, "@sha256:") {
		return ""
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	switch {
	case !ok || tag == "":
		return "no tag (means latest)"
	case tag == "latest":
		return "tag latest"
	}
	return ""
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	args := map[string]string{}
	var froms []instruction
	var final []instruction // instructions of the last stage
	for _, in := range ins {
		switch in.cmd {
		case "ARG":
			if k, v, ok := strings.Cut(in.args, "="); ok && len(froms) == 0 {
				args[k] = v
			}
		case "FROM":
			froms = append(froms, in)
			final = nil
		}
		final = append(final, in)
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got %d FROM", len(froms))
	}
	expand := func(s string) string {
		return os.Expand(s, func(k string) string { return args[k] })
	}
	build := strings.Fields(froms[0].args)
	if !strings.HasPrefix(expand(build[0]), "golang:"+goModMinor(t)) {
		t.Errorf("builder image %s (%s): want golang:%s… (go.mod's Go)", build[0], expand(build[0]), goModMinor(t))
	}
	for _, f := range froms {
		if why := imagePinned(expand(strings.Fields(f.args)[0])); why != "" {
			t.Errorf("line %d: FROM %s: %s", f.line, f.args, why)
		}
	}
	base := strings.Fields(final[0].args)[0]
	nonroot := strings.HasSuffix(base, ":nonroot") && strings.HasPrefix(base, "gcr.io/distroless/static")
	if !nonroot && base != "scratch" {
		t.Errorf("final image %s: want gcr.io/distroless/static…:nonroot or scratch", base)
	}
	var user, entry string
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "RUN":
			t.Errorf("line %d: RUN in the final stage (it has no shell)", in.line)
		}
	}
	u, _, _ := strings.Cut(user, ":")
	if u == "" && !nonroot || u == "0" || u == "root" {
		t.Errorf("final stage runs as %q: want a non-root USER", user)
	}
	if entry != `["/taillight"]` {
		t.Errorf(`ENTRYPOINT %s: want ["/taillight"]`, entry)
	}
	// The build context: large local caches out, sources in.
	ign, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	pats := strings.Fields(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(string(ign), ""))
	for _, want := range []string{".git", ".venv", ".cache", "deployments/local/.kafka-jars", "deployments/local/node_modules"} {
		if !slices.Contains(pats, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	for _, p := range pats {
		for _, src := range []string{"go.mod", "go.sum", "cmd", "schemas", "producer", "processor", "sinks", "internal", "deployments"} {
			if ok, _ := filepath.Match(strings.TrimPrefix(p, "/"), src); ok {
				t.Errorf(".dockerignore pattern %q excludes %s, which the build needs", p, src)
			}
		}
	}
	gb := dockerGoBuild(t)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "-X main.version=", "./cmd/taillight"} {
		if !strings.Contains(gb, want) {
			t.Errorf("go build line %q lacks %q", gb, want)
		}
	}
}

// dockerGoBuild is the `… go build …` command of the Dockerfile's RUN.
func dockerGoBuild(t testing.TB) string {
	t.Helper()
	for _, in := range parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile")) {
		if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
			continue
		}
		i := strings.Index(in.args, "CGO_ENABLED=")
		if i < 0 {
			t.Fatalf("line %d: go build without CGO_ENABLED=", in.line)
		}
		return in.args[i:]
	}
	t.Fatal("Dockerfile: no RUN … go build")
	return ""
}

// shellWords splits a command line as sh would for the plain words and
// double-quoted strings the Dockerfile uses, expanding ${NAME} from vars.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var out []string
	var w strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quoted, inWord = !quoted, true
		case (c == ' ' || c == '\t') && !quoted:
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'' || c == '`' || c == ';' || c == '&' || c == '|':
			return nil, fmt.Errorf("unsupported shell syntax %q in %q", c, s)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		out = append(out, w.String())
	}
	for i := range out {
		out[i] = os.Expand(out[i], func(k string) string { return vars[k] })
	}
	return out, nil
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// dockerBinary builds ./cmd/taillight with the Dockerfile's own go build
// command (VERSION=deploy-test), once per test binary.
func dockerBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "taillight-deploy-test-")
		if err != nil {
			binErr = err
			return
		}
		// The temp dir outlives the first test to use it; TestMain removes it.
		binPath = filepath.Join(dir, "taillight")
		words, err := shellWords(dockerGoBuild(t), map[string]string{"VERSION": "deploy-test"})
		if err != nil {
			binErr = err
			return
		}
		env := os.Environ()
		i := 0
		for ; i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-"); i++ {
			env = append(env, words[i])
		}
		argv := words[i:]
		if len(argv) < 2 || argv[0] != "go" || argv[1] != "build" {
			binErr = fmt.Errorf("not a go build command: %q", words)
			return
		}
		if j := slices.Index(argv, "-o"); j >= 0 && j+1 < len(argv) {
			argv[j+1] = binPath
		} else {
			binErr = fmt.Errorf("go build without -o: %q", words)
			return
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = repoRoot
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("%s: %v\n%s", strings.Join(words, " "), err, out)
		}
	})
	if binErr != nil {
		t.Fatalf("building taillight as the Dockerfile does: %v", binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	if err := os.Chdir(filepath.Join("..", "..", "deployments")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func TestDockerBinaryStatic(t *testing.T) {
	bin := dockerBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has PT_INTERP: dynamically linked, will not run on distroless/static or scratch")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("binary needs shared libraries (DT_NEEDED) %q", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("binary has a symbol table: -ldflags -s missing")
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "deploy-test") {
		t.Errorf("taillight version = %q, %v: want the -X main.version value deploy-test", out, err)
	}
}

// cli is what the built binary says about its commands and their flags.
type cli struct {
	bin   string
	mu    sync.Mutex
	flags map[string][]string // command → flag names; nil slice = unknown command
}

var flagLine = regexp.MustCompile(`(?m)^  -([a-z0-9][a-z0-9.\-]*)`)

func newCLI(t testing.TB) *cli { return &cli{bin: dockerBinary(t), flags: map[string][]string{}} }

// commands lists the subcommands `taillight help` prints.
func (c *cli) commands(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command(c.bin, "help").CombinedOutput()
	if err != nil {
		t.Fatalf("taillight help: %v\n%s", err, out)
	}
	_, list, ok := strings.Cut(string(out), "Commands:\n")
	if !ok {
		t.Fatalf("taillight help: no Commands: section\n%s", out)
	}
	var names []string
	for _, l := range strings.Split(list, "\n") {
		if !strings.HasPrefix(l, "  ") {
			if len(names) > 0 {
				break
			}
			continue
		}
		names = append(names, strings.Fields(l)[0])
	}
	return names
}

// flagsOf lists the flags of a subcommand from `taillight help <cmd>`.
func (c *cli) flagsOf(t testing.TB, cmd string) []string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.flags[cmd]; ok {
		return f
	}
	if !slices.Contains(c.commands(t), cmd) {
		c.flags[cmd] = nil
		return nil
	}
	out, _ := exec.Command(c.bin, "help", cmd).CombinedOutput()
	var fl []string
	for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
		fl = append(fl, m[1])
	}
	if len(fl) == 0 {
		t.Fatalf("taillight help %s lists no flags:\n%s", cmd, out)
	}
	c.flags[cmd] = fl
	return fl
}

// envName mirrors cmd/taillight: kafka.brokers → TAILLIGHT_KAFKA_BROKERS.
func envName(flag string) string {
	return "TAILLIGHT_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(flag))
}

// checkArgs reports what is wrong with a taillight command line (subcommand
// first) and the TAILLIGHT_* variables given to it.
func (c *cli) checkArgs(t testing.TB, args []string, env []string) []string {
	t.Helper()
	if len(args) == 0 {
		return []string{"no subcommand"}
	}
	fl := c.flagsOf(t, args[0])
	if fl == nil {
		return []string{fmt.Sprintf("%q is not a taillight command", args[0])}
	}
	var bad []string
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "-") {
			bad = append(bad, fmt.Sprintf("%s: positional argument %q", args[0], a))
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !slices.Contains(fl, name) {
			bad = append(bad, fmt.Sprintf("%s has no flag -%s", args[0], name))
		}
	}
	envs := map[string]bool{}
	for _, f := range fl {
		envs[envName(f)] = true
	}
	for _, e := range env {
		if strings.HasPrefix(e, "TAILLIGHT_") && !envs[e] {
			bad = append(bad, fmt.Sprintf("%s has no flag for %s", args[0], e))
		}
	}
	return bad
}

// secretName matches variable names whose values must not be written inline.
var secretName = regexp.MustCompile(`(?i)(password|token|secret|api_?key)`)

// envRef matches a value that is only a ${VAR…} reference to the environment.
var envRef = regexp.MustCompile(`^\$\{[A-Z_][A-Z0-9_]*(:?[?-][^}]*)?\}$`)

// composeFile is the part of compose.yaml the tests look at.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Entrypoint  []string          `yaml:"entrypoint"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		Volumes  []string `yaml:"volumes"`
		ReadOnly bool     `yaml:"read_only"`
		CapDrop  []string `yaml:"cap_drop"`
	} `yaml:"services"`
}

func loadCompose(t testing.TB) composeFile {
	t.Helper()
	b, err := os.ReadFile("compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

// kafkaJarsVersion is the Kafka release the local scripts and tests run.
func kafkaJarsVersion(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("local/kafka/pom.xml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`<kafka.version>([^<]+)</kafka.version>`).FindSubmatch(b)
	if m == nil {
		t.Fatal("local/kafka/pom.xml: no <kafka.version>")
	}
	return string(m[1])
}

// topicPartitions is the partition count kafka-init gives trace-items.
func topicPartitions(t testing.TB, c composeFile) int {
	t.Helper()
	cmd := strings.Join(c.Services["kafka-init"].Command, " ")
	m := regexp.MustCompile(`--topic trace-items --partitions (\d+)`).FindStringSubmatch(cmd)
	if m == nil {
		t.Fatalf("kafka-init does not create trace-items with --partitions: %q", cmd)
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

func TestComposeFile(t *testing.T) {
	c := loadCompose(t)
	cl := newCLI(t)
	for _, want := range []string{"kafka", "kafka-init", "clickhouse", "migrate", "ingest", "process-1", "process-2", "grafana"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("no service %s", want)
		}
	}
	taillight := map[string]string{} // service → subcommand
	for name, s := range c.Services {
		if s.Build != nil {
			if !strings.HasPrefix(s.Image, "taillight:") {
				t.Errorf("%s: built image %q: want taillight:<tag>", name, s.Image)
			}
			taillight[name] = s.Command[0]
			env := make([]string, 0, len(s.Environment))
			for k := range s.Environment {
				env = append(env, k)
			}
			for _, e := range cl.checkArgs(t, s.Command, env) {
				t.Errorf("%s: %s", name, e)
			}
			if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") {
				t.Errorf("%s: want read_only: true and cap_drop: [ALL]", name)
			}
		} else if why := imagePinned(s.Image); why != "" {
			t.Errorf("%s: image %q: %s", name, s.Image, why)
		}
		for k, v := range s.Environment {
			if secretName.MatchString(k) && !envRef.MatchString(v) && v != "taillight_reader" {
				t.Errorf("%s: %s is written inline (%q): take it from .env as ${VAR:?…}", name, k, v)
			}
		}
	}
	if got := taillight["migrate"]; got != "migrate" {
		t.Errorf("migrate service runs %q", got)
	}
	if got := taillight["ingest"]; got != "ingest" {
		t.Errorf("ingest service runs %q", got)
	}
	for _, p := range []string{"process-1", "process-2"} {
		if taillight[p] != "process" {
			t.Errorf("%s runs %q, want process", p, taillight[p])
		}
		if d := c.Services[p].DependsOn["migrate"].Condition; d != "service_completed_successfully" {
			t.Errorf("%s: depends_on migrate condition %q", p, d)
		}
	}
	if d := c.Services["migrate"].DependsOn["clickhouse"].Condition; d != "service_healthy" {
		t.Errorf("migrate: depends_on clickhouse condition %q", d)
	}
	for _, s := range []string{"kafka", "clickhouse", "grafana"} {
		if c.Services[s].Healthcheck == nil || len(c.Services[s].Healthcheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", s)
		}
	}
	if want := "apache/kafka:" + kafkaJarsVersion(t); c.Services["kafka"].Image != want {
		t.Errorf("kafka image %s: want %s, the release the tests run", c.Services["kafka"].Image, want)
	}
	if n := topicPartitions(t, c); n < 2 {
		t.Errorf("trace-items has %d partitions: two processors need at least two", n)
	}

	// Grafana: the dashboards and their provider from deployments/grafana,
	// under the path the provider names; the data source uid they refer to.
	mounts := map[string]string{}
	for _, v := range c.Services["grafana"].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			mounts[parts[1]] = parts[0]
		}
	}
	prov, err := os.ReadFile("grafana/provisioning/dashboards/taillight.yaml")
	if err != nil {
		t.Fatalf("deployments/grafana is missing its dashboard provider: %v", err)
	}
	var provider struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(prov, &provider); err != nil || len(provider.Providers) == 0 {
		t.Fatalf("grafana dashboard provider: %v", err)
	}
	for target, src := range map[string]string{
		"/etc/grafana/provisioning/dashboards":  "../grafana/provisioning/dashboards",
		provider.Providers[0].Options.Path:      "../grafana/dashboards",
		"/etc/grafana/provisioning/datasources": "./grafana/datasources",
	} {
		if mounts[target] != src {
			t.Errorf("grafana: %s mounted from %q, want %s", target, mounts[target], src)
		}
		if _, err := os.Stat(filepath.Join("compose", src)); err != nil {
			t.Errorf("grafana mount source: %v", err)
		}
	}
	ds, err := os.ReadFile("compose/grafana/datasources/taillight-clickhouse.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var dsf struct {
		Datasources []struct {
			UID, Type      string
			SecureJSONData map[string]string `yaml:"secureJsonData"`
		}
	}
	if err := yaml.Unmarshal(ds, &dsf); err != nil || len(dsf.Datasources) != 1 {
		t.Fatalf("compose data source: %v (%d data sources)", err, len(dsf.Datasources))
	}
	gds, err := os.ReadFile("grafana/provisioning/datasources/taillight-clickhouse.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var want struct{ Datasources []struct{ UID, Type string } }
	if err := yaml.Unmarshal(gds, &want); err != nil || len(want.Datasources) != 1 {
		t.Fatalf("grafana data source: %v (%d data sources)", err, len(want.Datasources))
	}
	if d, w := dsf.Datasources[0], want.Datasources[0]; d.UID != w.UID || d.Type != w.Type {
		t.Errorf("compose data source %s/%s: want %s/%s as the dashboards expect (grafana/provisioning)", d.Type, d.UID, w.Type, w.UID)
	}
	if pw := dsf.Datasources[0].SecureJSONData["password"]; !strings.HasPrefix(pw, "$") {
		t.Errorf("compose data source password written inline")
	}

	// .env.example holds placeholders only.
	env, err := os.ReadFile("compose/.env.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(env), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if ok && !strings.HasPrefix(k, "#") && secretName.MatchString(k) && !strings.Contains(v, "change-me") {
			t.Errorf(".env.example: %s=%q is not a change-me placeholder", k, v)
		}
	}
}

// composeCmd finds docker compose (plugin) or docker-compose (Debian).
func composeCmd() ([]string, error) {
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}, nil
	}
	if p, err := exec.LookPath("docker"); err == nil {
		if exec.Command(p, "compose", "version").Run() == nil {
			return []string{p, "compose"}, nil
		}
	}
	return nil, errors.New("neither docker-compose nor the docker compose plugin is installed (Debian: apt-get install -y --no-install-recommends docker-compose)")
}

func TestComposeConfig(t *testing.T) {
	dc, err := composeCmd()
	if err != nil {
		missing(t, err.Error())
	}
	run := func(envFile string) (string, error) {
		args := append(dc[1:], "--env-file", envFile, "-f", "compose.yaml", "config")
		cmd := exec.Command(dc[0], args...)
		cmd.Dir = "compose"
		// Only the env file may supply the secrets.
		for _, e := range os.Environ() {
			k, _, _ := strings.Cut(e, "=")
			if !secretName.MatchString(k) && !strings.HasPrefix(k, "CLICKHOUSE_") && !strings.HasPrefix(k, "TAILLIGHT_") {
				cmd.Env = append(cmd.Env, e)
			}
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(".env.example")
	if err != nil {
		t.Fatalf("%s config: %v\n%s", strings.Join(dc, " "), err, out)
	}
	var c composeFile
	if err := yaml.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("config output: %v", err)
	}
	if got := c.Services["process-2"].Environment["TAILLIGHT_CLICKHOUSE_PASSWORD"]; got != "change-me" {
		t.Errorf("process-2 password after interpolation = %q; want .env.example's change-me", got)
	}
	empty := filepath.Join(t.TempDir(), "empty.env")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(empty); err == nil || !strings.Contains(out, "set ") {
		t.Errorf("config without secrets: err %v, want a failure naming the variable to set\n%s", err, out)
	}
}

// k8sDocs renders deployments/k8s with validate.sh (which also validates
// every resource against the Kubernetes and KEDA schemas) and returns the
// rendered resources of each kustomization.
func k8sDocs(t *testing.T) map[string][]map[string]any {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: validate.sh may install kubernetes-validate from PyPI first")
	}
	for _, tool := range []string{"bash", "python3", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, tool+" not found: deployments/k8s/validate.sh needs bash, python3 (with venv) and go")
		}
	}
	out := t.TempDir()
	start := time.Now()
	cmd := exec.Command("bash", "k8s/validate.sh", out)
	b, err := cmd.CombinedOutput()
	t.Logf("validate.sh took %s", time.Since(start).Round(time.Millisecond))
	if err != nil {
		if bytes.Contains(b, []byte("INVALID")) || bytes.Contains(b, []byte("kustomize build")) {
			t.Fatalf("deployments/k8s/validate.sh: %v\n%s", err, b)
		}
		missing(t, fmt.Sprintf("deployments/k8s/validate.sh could not get its tools: %v\n%s", err, b))
	}
	docs := map[string][]map[string]any{}
	files, _ := filepath.Glob(filepath.Join(out, "*.yaml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var d map[string]any
			if err := dec.Decode(&d); err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s: %v", f, err)
			}
			if d != nil {
				docs[strings.TrimSuffix(filepath.Base(f), ".yaml")] = append(docs[strings.TrimSuffix(filepath.Base(f), ".yaml")], d)
			}
		}
	}
	for _, want := range []string{"base", "overlays_example"} {
		if len(docs[want]) == 0 {
			t.Fatalf("validate.sh rendered no resources for %s (files %q)", want, files)
		}
	}
	return docs
}

// get walks a decoded YAML tree: get(d, "spec", "template", 0, …).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func str(v any, path ...any) string { s, _ := get(v, path...).(string); return s }

func TestKubernetes(t *testing.T) {
	docs := k8sDocs(t)
	cl := newCLI(t)
	c := loadCompose(t)
	partitions := topicPartitions(t, c)
	for set, ds := range docs {
		t.Run(set, func(t *testing.T) {
			kinds := map[string]map[string]any{} // kind/name → doc
			config := map[string]bool{}          // keys of the taillight ConfigMap
			for _, d := range ds {
				kinds[str(d, "kind")+"/"+str(d, "metadata", "name")] = d
				if str(d, "kind") == "ConfigMap" && strings.HasPrefix(str(d, "metadata", "name"), "taillight-config") {
					for k := range get(d, "data").(map[string]any) {
						config[k] = true
					}
				}
				if str(d, "kind") == "Secret" {
					if set == "base" {
						t.Errorf("base has Secret %s: the base only refers to taillight-secrets", str(d, "metadata", "name"))
					}
					for k, v := range get(d, "data").(map[string]any) {
						b, err := base64.StdEncoding.DecodeString(fmt.Sprint(v))
						if err != nil || secretName.MatchString(k) && !bytes.Contains(b, []byte("change-me")) {
							t.Errorf("Secret %s key %s: want a change-me placeholder (%v)", str(d, "metadata", "name"), k, err)
						}
					}
				}
			}
			// The ConfigMap feeds every pod; each key must be a flag of some
			// taillight command (a typo would be silently ignored).
			for k := range config {
				ok := false
				for _, a := range []string{"ingest", "process", "migrate"} {
					ok = ok || len(cl.checkArgs(t, []string{a}, []string{k})) == 0
				}
				if !ok {
					t.Errorf("ConfigMap key %s is no flag of ingest, process or migrate", k)
				}
			}
			if len(config) == 0 {
				t.Error("no ConfigMap taillight-config")
			}
			var pods []string
			for key, d := range kinds {
				spec := get(d, "spec", "template", "spec")
				if spec == nil {
					continue
				}
				pods = append(pods, key)
				checkPod(t, cl, key, d, spec.(map[string]any))
			}
			for _, want := range []string{"Deployment/taillight-ingest", "Deployment/taillight-process", "Job/taillight-migrate", "Service/taillight-ingest",
				"HorizontalPodAutoscaler/taillight-ingest", "ScaledObject/taillight-process", "PodDisruptionBudget/taillight-ingest", "PodDisruptionBudget/taillight-process"} {
				if kinds[want] == nil {
					t.Errorf("no %s (have %d pod templates: %q)", want, len(pods), pods)
				}
			}
			for _, dep := range []string{"taillight-ingest", "taillight-process"} {
				sel := get(kinds["Deployment/"+dep], "spec", "selector", "matchLabels")
				if pdb := get(kinds["PodDisruptionBudget/"+dep], "spec", "selector", "matchLabels"); fmt.Sprint(pdb) != fmt.Sprint(sel) {
					t.Errorf("PDB %s selects %v, Deployment %v", dep, pdb, sel)
				}
			}
			hpa := kinds["HorizontalPodAutoscaler/taillight-ingest"]
			if str(hpa, "spec", "scaleTargetRef", "name") != "taillight-ingest" || str(hpa, "spec", "metrics", 0, "resource", "name") != "cpu" {
				t.Errorf("HPA: want taillight-ingest scaled on cpu, got %v", get(hpa, "spec"))
			}
			so := kinds["ScaledObject/taillight-process"]
			if str(so, "spec", "scaleTargetRef", "name") != "taillight-process" {
				t.Errorf("ScaledObject targets %q", str(so, "spec", "scaleTargetRef", "name"))
			}
			tr := get(so, "spec", "triggers", 0)
			if str(tr, "type") != "kafka" || str(tr, "metadata", "consumerGroup") != "taillight" ||
				str(tr, "metadata", "topic") != "trace-items" || str(tr, "metadata", "lagThreshold") == "" || str(tr, "metadata", "bootstrapServers") == "" {
				t.Errorf("ScaledObject trigger %v: want kafka on group taillight, topic trace-items, with bootstrapServers and lagThreshold", tr)
			}
			if b := strings.Split(str(tr, "metadata", "bootstrapServers"), ","); !strings.Contains(str(kinds[configName(kinds)], "data", "TAILLIGHT_KAFKA_BROKERS"), b[0]) {
				t.Errorf("ScaledObject reads lag from %v, the pods use brokers %q", b, str(kinds[configName(kinds)], "data", "TAILLIGHT_KAFKA_BROKERS"))
			}
			if m, _ := get(so, "spec", "maxReplicaCount").(int); m < 1 || m > partitions {
				t.Errorf("ScaledObject maxReplicaCount %v: want 1..%d (the partitions of trace-items)", get(so, "spec", "maxReplicaCount"), partitions)
			}
		})
	}
}

func configName(kinds map[string]map[string]any) string {
	for k := range kinds {
		if strings.HasPrefix(k, "ConfigMap/taillight-config") {
			return k
		}
	}
	return ""
}

// checkPod checks a pod template: non-root, read-only, no capabilities,
// resources, probes on the ops endpoints, valid taillight args and env.
func checkPod(t *testing.T, cl *cli, key string, d, spec map[string]any) {
	t.Helper()
	if get(spec, "securityContext", "runAsNonRoot") != true {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", key)
	}
	if get(spec, "automountServiceAccountToken") != false {
		t.Errorf("%s: automountServiceAccountToken should be false (taillight never calls the API server)", key)
	}
	for i, ci := range get(spec, "containers").([]any) {
		ctr := ci.(map[string]any)
		where := fmt.Sprintf("%s container %d (%s)", key, i, str(ctr, "name"))
		sc := get(ctr, "securityContext")
		if get(sc, "readOnlyRootFilesystem") != true || get(sc, "allowPrivilegeEscalation") != false ||
			fmt.Sprint(get(sc, "capabilities", "drop")) != "[ALL]" {
			t.Errorf("%s: securityContext %v: want readOnlyRootFilesystem, no privilege escalation, drop ALL", where, sc)
		}
		for _, r := range []string{"requests/cpu", "requests/memory", "limits/memory"} {
			a, b, _ := strings.Cut(r, "/")
			if get(ctr, "resources", a, b) == nil {
				t.Errorf("%s: no resources.%s.%s", where, a, b)
			}
		}
		var args, env []string
		for _, a := range get(ctr, "args").([]any) {
			args = append(args, a.(string))
		}
		for _, e := range asSlice(get(ctr, "env")) {
			env = append(env, str(e, "name"))
			if n := str(e, "name"); secretName.MatchString(n) && get(e, "valueFrom", "secretKeyRef") == nil {
				t.Errorf("%s: %s not from a Secret (secretKeyRef)", where, n)
			}
		}
		for _, bad := range cl.checkArgs(t, args, env) {
			t.Errorf("%s: %s", where, bad)
		}
		if str(d, "kind") != "Deployment" {
			continue
		}
		for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
			if got := str(ctr, probe, "httpGet", "path"); got != path {
				t.Errorf("%s: %s path %q, want %s", where, probe, got, path)
			}
			port := str(ctr, probe, "httpGet", "port")
			found := false
			for _, p := range asSlice(get(ctr, "ports")) {
				if str(p, "name") == port {
					found = true
					// The port the command serves its ops endpoints on.
					cp, _ := get(p, "containerPort").(int)
					if !slices.ContainsFunc(args, func(a string) bool { return strings.HasSuffix(a, fmt.Sprintf(":%d", cp)) }) {
						t.Errorf("%s: %s on port %s (%d), which no -listen flag in %q names", where, probe, port, cp, args)
					}
				}
			}
			if !found {
				t.Errorf("%s: %s on unnamed or unknown port %q", where, probe, port)
			}
		}
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }
