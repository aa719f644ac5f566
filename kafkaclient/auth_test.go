package kafkaclient

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const pw = "hunter2-do-not-log"

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Auth
		want string // "" = valid
	}{
		{"zero", Auth{}, ""},
		{"tls only", Auth{TLS: true, CAFile: "ca.pem"}, ""},
		{"plain", Auth{SASLMechanism: "plain", SASLUser: "u", SASLPassword: pw}, ""},
		{"scram file", Auth{SASLMechanism: "SCRAM-SHA-512", SASLUser: "u", SASLPasswordFile: "f"}, ""},
		{"ca without tls", Auth{CAFile: "ca.pem"}, "TLS is off"},
		{"skip verify without tls", Auth{InsecureSkipVerify: true}, "TLS is off"},
		{"cert without key", Auth{TLS: true, CertFile: "c.pem"}, "both a cert file and a key file"},
		{"bad mechanism", Auth{SASLMechanism: "GSSAPI", SASLUser: "u", SASLPassword: pw}, `"GSSAPI"`},
		{"user without mechanism", Auth{SASLUser: "u"}, "no SASL mechanism"},
		{"no user", Auth{SASLMechanism: "PLAIN", SASLPassword: pw}, "needs a user"},
		{"no password", Auth{SASLMechanism: "PLAIN", SASLUser: "u"}, "exactly one of"},
		{"both passwords", Auth{SASLMechanism: "PLAIN", SASLUser: "u", SASLPassword: pw, SASLPasswordFile: "f"}, "exactly one of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v; want an error containing %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), pw) {
				t.Fatalf("error text holds the password: %v", err)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	var c Auth
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var help bytes.Buffer
	fs.SetOutput(&help)
	c.RegisterFlags(fs, "kafka.")
	err := fs.Parse([]string{"-kafka.tls", "-kafka.tls.ca-file", "ca.pem", "-kafka.tls.server-name", "k.test",
		"-kafka.sasl.mechanism", "SCRAM-SHA-256", "-kafka.sasl.user", "alice", "-kafka.sasl.password", pw})
	if err != nil {
		t.Fatal(err)
	}
	want := Auth{TLS: true, CAFile: "ca.pem", ServerName: "k.test", SASLMechanism: "SCRAM-SHA-256", SASLUser: "alice", SASLPassword: pw}
	if c != want {
		t.Fatalf("parsed %#v; want %#v", c, want)
	}
	fs.PrintDefaults()
	for _, name := range []string{"-kafka.tls.cert-file", "-kafka.tls.key-file", "-kafka.tls.insecure-skip-verify", "-kafka.sasl.password-file"} {
		if !strings.Contains(help.String(), name) {
			t.Errorf("help lacks %s", name)
		}
	}
	if strings.Contains(help.String(), pw) {
		t.Fatal("help shows the password")
	}
}

// A Auth printed, logged or dumped as JSON never shows the password.
func TestSecretNeverPrinted(t *testing.T) {
	c := Auth{SASLMechanism: "PLAIN", SASLUser: "alice", SASLPassword: pw}
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		slog.New(h).Info("config", "cfg", c, "password", c.SASLPassword, "ptr", &c)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %+v %#v %s %v", c, c, c, c.SASLPassword, &c) + logs.String() + string(j)
	if strings.Contains(out, pw) {
		t.Fatalf("password printed:\n%s", out)
	}
	if !strings.Contains(out, redacted) {
		t.Fatalf("no %q marker in:\n%s", redacted, out)
	}
}

func TestOptsFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Auth
		want string
	}{
		{"missing CA", Auth{TLS: true, CAFile: filepath.Join(dir, "nope.pem")}, "read CA file"},
		{"CA not PEM", Auth{TLS: true, CAFile: bad}, "holds no PEM certificate"},
		{"bad client cert", Auth{TLS: true, CertFile: bad, KeyFile: bad}, "load client certificate"},
		{"missing password file", Auth{SASLMechanism: "PLAIN", SASLUser: "u", SASLPasswordFile: filepath.Join(dir, "nope")}, "read SASL password file"},
		{"invalid", Auth{SASLMechanism: "X"}, "want PLAIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.opts()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Opts = %v; want an error containing %q", err, tc.want)
			}
		})
	}
	opts, err := (&Auth{TLS: true, InsecureSkipVerify: true, SASLMechanism: "scram-sha-512", SASLUser: "u", SASLPassword: pw}).opts()
	if err != nil || len(opts) != 2 {
		t.Fatalf("Opts = %d options, %v; want 2, nil", len(opts), err)
	}
	if opts, err := (&Auth{}).opts(); err != nil || len(opts) != 0 {
		t.Fatalf("zero Auth: Opts = %d options, %v; want none", len(opts), err)
	}
}

// The password file is read at every handshake: a rotated password is used
// by the next connection, and an empty file is an error naming the file only.
func TestPasswordFileRotation(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pw")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("first\n")
	c := Auth{SASLMechanism: "PLAIN", SASLUser: "alice", SASLPasswordFile: f}
	if _, err := c.opts(); err != nil {
		t.Fatal(err)
	}
	m := c.saslMechanism(MechanismPlain)
	first := func() string {
		t.Helper()
		_, msg, err := m.Authenticate(context.Background(), "127.0.0.1:9092")
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		return string(msg)
	}
	if got := first(); got != "\x00alice\x00first" {
		t.Fatalf("PLAIN message %q; want user alice, password first", got)
	}
	write("second\r\n")
	if got := first(); got != "\x00alice\x00second" {
		t.Fatalf("after rotation PLAIN message %q; want password second", got)
	}
	write("\n")
	_, _, err := m.Authenticate(context.Background(), "127.0.0.1:9092")
	if err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("empty file: Authenticate = %v; want an 'is empty' error", err)
	}
	for _, mech := range []string{MechanismSCRAMSHA256, MechanismSCRAMSHA512} {
		write(pw)
		_, msg, err := c.saslMechanism(mech).Authenticate(context.Background(), "h")
		if err != nil || strings.Contains(string(msg), pw) || !strings.Contains(string(msg), "n=alice") {
			t.Fatalf("%s first message %q, %v; want n=alice and no password", mech, msg, err)
		}
	}
}
