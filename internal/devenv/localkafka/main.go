// Command localkafka runs a local Apache Kafka cluster (internal/devenv's
// StartKafka: KRaft, 1 or 3 nodes, free loopback ports) in the foreground
// until interrupted, for people and scripts (deployments/local/kafka.sh runs
// it in the background). When the cluster answers it prints one line,
//
//	KAFKA_BROKERS=127.0.0.1:PORT[,...]
//
// and on SIGINT/SIGTERM it kills the brokers and removes their directory. Its data does not outlive it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/taillight/taillight/internal/devenv"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("localkafka", flag.ContinueOnError)
	brokers := fs.Int("brokers", 1, "number of brokers: 1 or 3")
	dir := fs.String("dir", "", "where to make the cluster's temporary directory (default: the system temp dir)")
	timeout := fs.Duration("start-timeout", 2*time.Minute, "how long to wait for the brokers to answer")
	jars := fs.String("jars", "", "directory of the Kafka jars (default: deployments/local/.kafka-jars/"+devenv.KafkaVersion+")")
	var props propsFlag
	fs.Var(&props, "prop", "extra server.properties entry key=value (repeatable)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	k, err := devenv.StartKafka(ctx, devenv.KafkaConfig{
		Brokers: *brokers, Dir: *dir, Log: log, StartTimeout: *timeout, JarsDir: *jars, ExtraProps: props,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "localkafka: %v\n", err)
		return 1
	}
	fmt.Printf("KAFKA_BROKERS=%s\n", strings.Join(k.Brokers(), ","))
	log.Info("kafka running; interrupt to stop", "dir", k.Dir())
	<-ctx.Done()

	// Close kills the brokers: stopping them one by one gracefully would stall
	// once the controller quorum is gone, and the data is thrown away anyway.
	if err := k.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "localkafka: %v\n", err)
		return 1
	}
	return 0
}

// propsFlag collects -prop key=value.
type propsFlag map[string]string

func (p *propsFlag) String() string { return fmt.Sprint(map[string]string(*p)) }

func (p *propsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	if *p == nil {
		*p = make(propsFlag)
	}
	(*p)[k] = v
	return nil
}
