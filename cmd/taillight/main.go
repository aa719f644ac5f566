// Command taillight is the one binary of the pipeline; its subcommands run
// each part (see `taillight help`).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // runtime failure
	exitUsage = 2 // bad flags or bad input
)

// command is one subcommand. A command with the standard flags has help
// and flags; exec parses them for it. Any other has run, which gets the
// arguments after the subcommand name. Both get a context cancelled on
// SIGINT/SIGTERM.
type command struct {
	name    string
	summary string
	help    string              // usage text, printed before the flags
	flags   func() commandFlags // a new flags value holding the defaults
	run     func(ctx context.Context, args []string, io stdio) int
	hidden  bool // run by other commands; left out of the help listing
}

// commandFlags is the flags value of a command with the standard flags:
// register adds its flags (the -log.* flags are always there) and its
// steps; run runs the command once they are parsed and the steps passed.
type commandFlags interface {
	register(c *cli)
	run(ctx context.Context, log *slog.Logger, s stdio) int
}

type stdio struct {
	in       io.Reader
	out, err io.Writer
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], stdio{os.Stdin, os.Stdout, os.Stderr})
	stop()
	os.Exit(code)
}

func runMain(ctx context.Context, args []string, s stdio) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		if len(args) > 1 {
			c, ok := commands[args[1]]
			if !ok {
				fmt.Fprintf(s.err, "taillight help: unknown command %q\n\n", args[1])
				usage(s.err)
				return exitUsage
			}
			// Asked-for help goes to stdout (so | less shows it).
			return c.exec(ctx, []string{"-h"}, stdio{s.in, s.out, s.out})
		}
		usage(s.out)
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(s.err, "taillight: unknown command %q\n\n", args[0])
		usage(s.err)
		return exitUsage
	}
	if wantsHelp(args[1:]) {
		return c.exec(ctx, args[1:], stdio{s.in, s.out, s.out})
	}
	return c.exec(ctx, args[1:], s)
}

// exec runs the command with args. For a command with the standard flags
// it builds the flag set, parses args as parseCommand does, with the
// command's help as the usage text, builds the logger the -log.* flags ask
// for and runs the steps in order: the first error is printed as
// "taillight NAME: err" (a usage error).
func (c *command) exec(ctx context.Context, args []string, s stdio) int {
	if c.flags == nil {
		return c.run(ctx, args, s)
	}
	f := c.flags()
	cl := &cli{fs: newFlagSet(c.name, s)}
	cl.log.register(cl.fs)
	f.register(cl)
	if code, ok := parseCommand(cl.fs, args, c.help); !ok {
		return code
	}
	log, err := cl.log.logger(s.err)
	for _, step := range cl.steps {
		if err != nil {
			break
		}
		err = step()
	}
	if err != nil {
		fmt.Fprintf(s.err, "taillight %s: %v\n", c.name, err)
		return exitUsage
	}
	return f.run(ctx, log, s)
}

// wantsHelp reports whether args ask for a command's help (-h, -help,
// --help), before any non-flag argument.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "--h":
			return true
		case "--":
			return false
		}
	}
	return false
}

// listedCommands returns the names of the commands help lists, sorted.
func listedCommands() []string {
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "taillight: Cloudflare Workers trace events through Kafka into ClickHouse.")
	fmt.Fprintln(w, "\nUsage: taillight <command> [flags]\n\nCommands:")
	for _, n := range listedCommands() {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'taillight help <command>' for its flags. Every flag can also be set")
	fmt.Fprintln(w, "as an environment variable: -kafka.brokers is TAILLIGHT_KAFKA_BROKERS.")
}

// deprecatedFlag registers old as a hidden alias of the flag current
// (registered before): setting it sets current and *used, so the command
// can warn once its logger exists. Help (printDefaults) does not list it;
// its environment variable still works.
func deprecatedFlag(fs *flag.FlagSet, old, current string, used *bool) {
	fs.Var(aliasValue{fs.Lookup(current).Value, used}, old, "deprecated name of -"+current)
}

// aliasValue is the flag.Value of a deprecated alias.
type aliasValue struct {
	target flag.Value
	used   *bool
}

func (a aliasValue) String() string {
	if a.target == nil {
		return ""
	}
	return a.target.String()
}

func (a aliasValue) Set(v string) error {
	*a.used = true
	return a.target.Set(v)
}

// printDefaults is fs.PrintDefaults without the deprecated aliases.
func printDefaults(fs *flag.FlagSet) {
	shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	shown.SetOutput(fs.Output())
	fs.VisitAll(func(f *flag.Flag) {
		if _, alias := f.Value.(aliasValue); !alias {
			shown.Var(f.Value, f.Name, f.Usage)
			shown.Lookup(f.Name).DefValue = f.DefValue
		}
	})
	shown.PrintDefaults()
}

// flagSetRecorder is implemented by an error output that wants the flag
// sets the commands build: docs/flags.md is generated from them.
type flagSetRecorder interface {
	recordFlagSet(fs *flag.FlagSet)
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, s stdio) *flag.FlagSet {
	fs := flag.NewFlagSet("taillight "+name, flag.ContinueOnError)
	fs.SetOutput(s.err)
	if r, ok := s.err.(flagSetRecorder); ok {
		r.recordFlagSet(fs)
	}
	return fs
}

// parseFlags applies TAILLIGHT_* environment variables, then the command line
// (which wins). It returns false with the exit status to use when parsing
// failed or help was asked for.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if envErr != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("environment %s: %w", envName(f.Name), err)
			}
		}
	})
	if envErr != nil {
		fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), envErr)
		return exitUsage, false
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return exitUsage, false
	}
	return 0, true
}

// parseCommand parses args as parseFlags does, with help (then the flags)
// as the command's usage text.
func parseCommand(fs *flag.FlagSet, args []string, help string) (int, bool) {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help)
		printDefaults(fs)
	}
	return parseFlags(fs, args)
}

// cli is the frame of a subcommand with flags: its flag set, which always
// has the -log.* flags, and the steps run once the flags are parsed.
type cli struct {
	fs    *flag.FlagSet
	log   logFlags
	steps []func() error
}

// component is a part's configuration (chsink.Config, processor.Config…):
// it registers its own flags and validates itself.
type component interface {
	RegisterFlags(fs *flag.FlagSet, prefix string)
	Validate() error
}

// config registers cfg's flags under prefix and validates cfg once the
// flags are parsed, after the steps added before.
func (c *cli) config(prefix string, cfg component) {
	cfg.RegisterFlags(c.fs, prefix)
	// Not the method value cfg.Validate: with a value receiver it would
	// copy cfg now, before the flags are parsed.
	c.afterParse(func() error { return cfg.Validate() })
}

// afterParse adds a step run once the flags are parsed, after the steps
// added before: a check, or a value one flag derives from another.
func (c *cli) afterParse(step func() error) { c.steps = append(c.steps, step) }

// isSet reports whether the flag name was given (on the command line or
// as its environment variable).
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// envName maps a flag name to its environment variable: kafka.brokers →
// TAILLIGHT_KAFKA_BROKERS.
func envName(flagName string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return "TAILLIGHT_" + strings.ToUpper(r.Replace(flagName))
}

// logFlags are the logging flags of every command with the standard flags.
type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log.level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&l.format, "log.format", "text", "log format: text or json")
}

// logger builds the slog logger the flags describe, writing to w.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("-log.level %q: %w", l.level, err)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("-log.format %q: want text or json", l.format)
}
