// Package producer gets TraceItems into Kafka: the Publisher (franz-go,
// idempotent, acks=all, zstd), the HTTP ingest endpoint Tail Workers POST to
// (Ingest), and a deterministic synthetic load generator (Generator) that
// also reports the ground truth of every item it makes.
//
// Delivery is at-least-once: a publishing call that returns an error may
// have written some of its items (a 503 from Ingest likewise), and a client
// that retries may publish them twice. The processor deduplicates by Kafka
// coordinates, not by content, so such retries show up as duplicates.
//
// Metrics (registered on the Registerer given to New and NewIngest):
//
//	taillight_producer_records_total{result}            records acknowledged (ok) or failed (reason)
//	taillight_producer_record_bytes_total               value bytes acknowledged
//	taillight_producer_publish_calls_failed_total{reason} PublishSync/PublishRaw calls that failed
//	taillight_producer_kafka_*                          franz-go client metrics (kprom)
//	taillight_ingest_requests_total{code}               requests by HTTP status
//	taillight_ingest_items_total                        items accepted (acknowledged)
//	taillight_ingest_body_bytes_total                   decompressed body bytes read
//	taillight_ingest_request_duration_seconds           request to answer, acks included
//	taillight_ingest_token_reloads_total{result}        tokens file loads (ok, error)
//	taillight_ingest_refused_total{reason}              requests refused before publishing (bad_json, invalid, out_of_range, too_large, busy)
//	taillight_ingest_inflight_bytes                     request body bytes held now (MaxInflightBytes)
//
// Reasons are a fixed set: timeout, canceled, too_large, buffer_full,
// closed, kafka, other (see Reason).
package producer
