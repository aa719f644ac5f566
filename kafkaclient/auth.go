package kafkaclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms Auth accepts.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// Secret is a string that never prints itself.
type Secret string

const redacted = "[redacted]"

func (s Secret) String() string   { return redacted }
func (s Secret) GoString() string { return redacted }

// LogValue keeps the secret out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON keeps the secret out of JSON dumps.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// secretFlag is the flag.Value of a Secret: -help never shows a value.
type secretFlag struct{ s *Secret }

func (f secretFlag) String() string {
	return ""
}

func (f secretFlag) Set(v string) error { *f.s = Secret(v); return nil }

// Auth holds Kafka's TLS and SASL client settings. The zero value is a
// plaintext, unauthenticated client.
//
// Secrets: the SASL password is a Secret, whose String, GoString, LogValue
// and MarshalJSON print "[redacted]", so a logged or printed Auth leaks
// nothing. With SASLPasswordFile the file is read on every SASL handshake,
// so a rotated password is used by the next connection without a restart.
type Auth struct {
	// TLS turns TLS on; the other TLS fields need it.
	TLS bool
	// CAFile is a PEM file of CA certificates to trust (default: system roots).
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and key for mutual TLS
	// (both or neither).
	CertFile, KeyFile string
	// ServerName is the name verified in the brokers' certificates (default:
	// each broker's host).
	ServerName string
	// InsecureSkipVerify does not verify the brokers' certificates (tests only).
	InsecureSkipVerify bool

	// SASLMechanism is "" (no SASL), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	// (any case).
	SASLMechanism string
	// SASLUser and SASLPassword are the credentials; SASLPasswordFile, read
	// at every handshake, replaces SASLPassword (set one of them).
	SASLUser         string
	SASLPassword     Secret
	SASLPasswordFile string
}

// RegisterFlags registers the flags, each named prefix + name, e.g. with
// prefix "kafka." -kafka.tls and -kafka.sasl.password (whose environment
// variable, TAILLIGHT_KAFKA_SASL_PASSWORD, keeps it out of the process list).
func (c *Auth) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.BoolVar(&c.TLS, prefix+"tls", c.TLS, "connect to Kafka with TLS")
	fs.StringVar(&c.CAFile, prefix+"tls.ca-file", c.CAFile, "PEM file of CA certificates for Kafka TLS (default: system roots)")
	fs.StringVar(&c.CertFile, prefix+"tls.cert-file", c.CertFile, "PEM client certificate for Kafka mutual TLS (with -"+prefix+"tls.key-file)")
	fs.StringVar(&c.KeyFile, prefix+"tls.key-file", c.KeyFile, "PEM client key for Kafka mutual TLS")
	fs.StringVar(&c.ServerName, prefix+"tls.server-name", c.ServerName, "name to verify in the brokers' certificates (default: each broker's host)")
	fs.BoolVar(&c.InsecureSkipVerify, prefix+"tls.insecure-skip-verify", c.InsecureSkipVerify, "do not verify the brokers' certificates (testing only)")
	fs.StringVar(&c.SASLMechanism, prefix+"sasl.mechanism", c.SASLMechanism, "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)")
	fs.StringVar(&c.SASLUser, prefix+"sasl.user", c.SASLUser, "SASL user name")
	fs.Var(secretFlag{&c.SASLPassword}, prefix+"sasl.password", "SASL password; prefer the environment variable or -"+prefix+"sasl.password-file, which stay out of the process list")
	fs.StringVar(&c.SASLPasswordFile, prefix+"sasl.password-file", c.SASLPasswordFile, "file holding the SASL password, read at every connection (rotation without restart)")
}

// Validate reports the first problem with c. It reads no file.
func (c *Auth) Validate() error {
	if !c.TLS && (c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != "" || c.InsecureSkipVerify) {
		return errors.New("kafkaclient: TLS settings given but TLS is off (set -kafka.tls)")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("kafkaclient: a client certificate needs both a cert file and a key file")
	}
	mech := c.mechanism()
	switch mech {
	case "":
		if c.SASLUser != "" || c.SASLPassword != "" || c.SASLPasswordFile != "" {
			return errors.New("kafkaclient: SASL credentials given but no SASL mechanism (set -kafka.sasl.mechanism)")
		}
		return nil
	case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
	default:
		return fmt.Errorf("kafkaclient: SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism)
	}
	if c.SASLUser == "" {
		return fmt.Errorf("kafkaclient: SASL %s needs a user (-kafka.sasl.user)", mech)
	}
	if (c.SASLPassword == "") == (c.SASLPasswordFile == "") {
		return fmt.Errorf("kafkaclient: SASL %s needs exactly one of a password (TAILLIGHT_KAFKA_SASL_PASSWORD) and a password file", mech)
	}
	return nil
}

func (c *Auth) mechanism() string { return strings.ToUpper(strings.TrimSpace(c.SASLMechanism)) }

// LogAttrs describes c for a log line, without any secret.
func (c *Auth) LogAttrs() []any {
	return []any{"tls", c.TLS, "sasl", c.mechanism(), "sasl_user", c.SASLUser}
}

// opts validates c and returns the franz-go options: a TLS dialer and a
// SASL mechanism. It reads the CA, certificate and password files now, so a
// missing or bad file fails at start rather than at the first connection.
func (c *Auth) opts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	if c.TLS {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		// kgo sets ServerName to each broker's host when it is empty.
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := c.mechanism(); m != "" {
		if _, err := c.password(); err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(c.saslMechanism(m)))
	}
	return opts, nil
}

func (c *Auth) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // opt-in, documented as testing only
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafkaclient: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafkaclient: CA file %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafkaclient: load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// password returns the password, from the file when one is set. Errors name
// the file, never its content.
func (c *Auth) password() (string, error) {
	if c.SASLPasswordFile == "" {
		return string(c.SASLPassword), nil
	}
	b, err := os.ReadFile(c.SASLPasswordFile)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // PathError's text is safe, but keep only the cause
		}
		return "", fmt.Errorf("kafkaclient: read SASL password file %s: %w", c.SASLPasswordFile, err)
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", fmt.Errorf("kafkaclient: SASL password file %s is empty", c.SASLPasswordFile)
	}
	return p, nil
}

func (c *Auth) saslMechanism(m string) sasl.Mechanism {
	c = &Auth{SASLUser: c.SASLUser, SASLPassword: c.SASLPassword, SASLPasswordFile: c.SASLPasswordFile} // later edits of c do not matter
	user := c.SASLUser
	switch m {
	case MechanismPlain:
		return plain.Plain(func(context.Context) (plain.Auth, error) {
			p, err := c.password()
			return plain.Auth{User: user, Pass: p}, err
		})
	case MechanismSCRAMSHA256:
		return scram.Sha256(func(context.Context) (scram.Auth, error) {
			p, err := c.password()
			return scram.Auth{User: user, Pass: p}, err
		})
	default:
		return scram.Sha512(func(context.Context) (scram.Auth, error) {
			p, err := c.password()
			return scram.Auth{User: user, Pass: p}, err
		})
	}
}
