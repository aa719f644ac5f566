// Package local starts real servers on this machine, for tests and for
// `taillight dev`: a private ClickHouse (StartClickHouse), Apache Kafka in
// KRaft mode, and the Workers runtime (StartWorkerd).
//
// Every server runs as a child process in its own process group, in a
// directory of its own, listening on loopback ports that are free when it
// starts (or that the caller chose), so several can run side by side and
// beside other test binaries. Closing a server kills its whole process group;
// on Linux the kernel also kills it if the parent process dies first.
//
// The shell scripts beside this package install what the servers need
// (install.sh and install-*.sh) and start a server by hand (clickhouse.sh).
package devenv
