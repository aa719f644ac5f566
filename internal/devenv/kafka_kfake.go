package devenv

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// StartKfake starts franz-go's kfake, an in-process Kafka that speaks the real
// wire protocol: the embedded default for `taillight dev` and unit tests, where
// no JVM is wanted. brokers (default 1) brokers listen on free loopback ports
// (ListenAddrs). Topics are auto-created with 3 partitions, as StartKafka's
// brokers do; opts come after these defaults and so override them. Close the
// cluster when done.
func StartKfake(brokers int, opts ...kfake.Opt) (*kfake.Cluster, error) {
	if brokers <= 0 {
		brokers = 1
	}
	all := append([]kfake.Opt{
		kfake.NumBrokers(brokers),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(3),
	}, opts...)
	c, err := kfake.NewCluster(all...)
	if err != nil {
		return nil, fmt.Errorf("kfake: start %d brokers: %w", brokers, err)
	}
	return c, nil
}
