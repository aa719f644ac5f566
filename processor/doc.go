// Package processor is the consumer-group runtime of taillight: it polls
// TraceItems from Kafka, decodes, validates and redacts them, turns each into
// a raw row plus rollup deltas, cuts one sinks.Block per partition per
// flush, stores the blocks of all partitions together (a group commit), then
// commits the Kafka offsets. It stores through one contract, sinks.Sink.
//
// # Delivery
//
// Exactly-once in effect on at-least-once Kafka (DESIGN.md "Delivery"):
//
//   - Blocks are cut per partition by MaxRows, MaxBytes and Linger. A block
//     covers a contiguous offset range, poison records included. A block
//     that starts while other partitions' blocks are due takes their
//     deadline (cutClock), so blocks are cut together.
//   - Streaming (Config.NoStream off): raw rows leave in packets of
//     PacketRows on the committer's open stream (one INSERT per sink
//     StreamGroup, shared by its partitions) while blocks fill, and the
//     committer closes it before the
//     blocks' rollups are written, so the processor holds packets, not
//     blocks. When a stream fails, every block with rows in it drops its
//     remaining rows and, when committed, is read again from Kafka (a client
//     of its own, outside the group) and sent on a new stream, with backoff,
//     until stored; the rollups from the first pass are kept.
//   - The path is one-way. A worker cuts a block and hands it to the
//     committer, which owns it from then on: raw rows, DLQ records, then
//     the rollups of all the blocks it took in one write (sinks.Sink.Commit),
//     each block's commit point, then the Kafka offsets; then it hands the
//     block back with the result. The Kafka offset is committed only for
//     lag monitoring: on assignment a partition resumes
//     from sinks.Watermark.Next (Kafka's committed offset, or the earliest
//     offset, when the sink has no block yet), and its first block is not
//     written before it reaches Watermark.MaxRawOffset, so a block redone
//     after a crash covers every raw row of the one it replaces.
//   - On revoke (and on stop) a partition's worker processes what it holds
//     and has its block stored, bounded by ShutdownTimeout, and the
//     committer commits the offsets synchronously before the callback
//     returns. A block that has not
//     reached MaxRawOffset yet, or cannot be written in time, is dropped
//     instead: nothing of it was committed, so the next owner redoes it.
//   - On loss (session timeout) buffers are dropped without writing. A write
//     already in flight on the old owner may still land; the README says
//     what is guaranteed then.
//   - Poison records (bad JSON, wrong types, invalid items, items over
//     schemas.MaxItemBytes) go to the DLQ topic with the headers listed at
//     DLQHeaderReason, produced and acknowledged before the block holding
//     them is written. They never stall a partition. Their values are
//     redacted as text first (redact.Policy.Raw), so they are not always the
//     source bytes (DLQHeaderRedacted says when).
//   - A transient sink error is retried with capped exponential backoff
//     (RetryMin..RetryMax) without committing; the fetching of the
//     commit's partitions is paused meanwhile so memory stays bounded, and
//     blocks cut meanwhile join the retry. A block whose partition is given
//     up (lost, or out of time on revoke) is dropped from its commit. One
//     log line per state change.
//   - Back-pressure: when a partition's worker holds 2*MaxPollRecords
//     unprocessed records, the poll loop waits for it before polling again.
//     An error wrapping sinks.ErrSchema stops Run with that error.
//
// # Concurrency
//
// One goroutine polls; each owned partition has a worker goroutine that
// decodes, aggregates and sends packets, and hands each cut block to the
// committer goroutine: one commit is written while the next blocks fill, a
// partition's blocks are stored and committed in order. The processor owns
// the workers and the committer; they share settings, metrics, the memory
// budget and the cut clock (env) and point at nothing that owns them.
// Rebalance callbacks run between polls (kgo.BlockRebalanceOnPoll).
//
// # Metrics
//
// Registered on the Registerer given to New:
//
//	taillight_processor_records_total                 counter    records in written blocks (poison included)
//	taillight_processor_rows_total                    counter    raw rows written
//	taillight_processor_blocks_total                  counter    blocks written
//	taillight_processor_flush_seconds                 histogram  duration of a successful commit (its blocks' write)
//	taillight_processor_commit_blocks                 histogram  blocks written by one commit
//	taillight_processor_sealed_blocks_total           counter    blocks of owned partitions sealed into per-minute rows
//	taillight_processor_seal_errors_total             counter    seal runs that failed (retried next tick)
//	taillight_processor_dlq_total{reason}             counter    poison records acknowledged by the DLQ (bad_json, wrong_type, invalid, out_of_range, oversize)
//	taillight_processor_lag{partition}                gauge      high watermark minus the end of the last written block
//	taillight_processor_event_freshness_seconds       gauge      age of the newest event in the last written block
//	taillight_processor_sink_retries_total            counter    retried block writes (sink or DLQ failures)
//	taillight_processor_block_replays_total           counter    blocks read again from Kafka after their row stream failed
//	taillight_processor_paused_partitions             gauge      partitions with fetching paused
//	taillight_processor_partitions                    gauge      partitions assigned
//	taillight_processor_held_bytes                    gauge      record bytes polled and not yet sent (bounded by -memory.budget)
//	taillight_processor_halted_partitions             gauge      assigned partitions halted because their Kafka log changed
//	taillight_processor_log_anomalies_total{kind}     counter    Kafka log changes found (below_log_start, past_log_end, topic_id_changed)
//	taillight_processor_log_lost_records_total        counter    records removed from Kafka before they were read
//	taillight_processor_kafka_commit_errors_total     counter    refused offset commits to Kafka (lag tools only)
//	taillight_processor_kafka_*                       kprom client metrics (connections, bytes, fetch/produce batches)
package processor
