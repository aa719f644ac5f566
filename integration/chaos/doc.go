// Package chaos is taillight's fault-injection suite, on real Apache Kafka
// and ClickHouse (the integration package's harness): SIGKILLed and
// SIGTERMed processors, a ClickHouse outage, a consumer-offset reset, a
// rebalance storm, hostile input, and a three-broker cluster losing brokers.
//
// Every scenario ends with one invariant: rows in trace_items FINAL plus
// distinct records in the DLQ equal the records Kafka acknowledged, each
// exactly once (by Kafka coordinates and by an event id planted in the URL);
// the rollup views equal the ground truth and trace_items; each processor's
// VmRSS stays under 300 MiB; no planted secret is in ClickHouse, the DLQ,
// the processors' logs or /metrics.
//
// By default (`go test`, so `make test`) each scenario runs a small stream;
// TAILLIGHT_CHAOS=full (`make chaos`) runs the big versions (1M events and
// 12 SIGKILLs, 10 s and 60 s outages, …).
package chaos
