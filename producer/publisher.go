package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/taillight/taillight/internal/promreg"
	"github.com/taillight/taillight/schemas"
)

// ErrClosed is returned by publishing calls after Close.
var ErrClosed = errors.New("producer: publisher closed")

// recordHeaders are shared by every record: kgo only reads them.
var recordHeaders = []kgo.RecordHeader{
	{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentType)},
	{Key: schemas.HeaderSchemaVersion, Value: []byte(schemas.SchemaVersion)},
}

// RawItem is one already-encoded TraceItem: Key is schemas.Key of the item and
// Value its JSON. The client keeps both slices until Kafka acknowledged or
// failed the record, possibly after the publishing call returned (on a context
// error): never modify them after handing them over.
type RawItem struct {
	Key   []byte
	Value []byte
}

// Publisher publishes TraceItems to one Kafka topic: idempotent, acks=all,
// key = script name, headers = content type and schema version. It is safe
// for concurrent use.
type Publisher struct {
	cl     *kgo.Client
	topic  string
	log    *slog.Logger
	closed atomic.Bool

	published *prometheus.CounterVec
	bytes     prometheus.Counter
	failed    *prometheus.CounterVec
}

// New validates cfg and returns a Publisher. It does not wait for a broker:
// use Ping for that. reg may be nil (no metrics); log may be nil.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	comp, _ := codecs(cfg.Compression)
	kopts := []kgo.Opt{
		// Default "kgo": name the application in broker logs and quotas.
		kgo.ClientID(cfg.ClientID),
		// Records carry their topic too; this only guards a record built
		// without one.
		kgo.DefaultProduceTopic(cfg.Topic),
		// The default, stated because delivery depends on it: a record is
		// acknowledged only once every in-sync replica has it. Idempotent
		// writes stay on (kgo's default), so internal retries never duplicate.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// JSON TraceItems compress 5-10x; zstd gives the best ratio for the
		// CPU (lz4 is the fallback for brokers before 2.1). Default is snappy.
		kgo.ProducerBatchCompression(comp...),
		// Ingest answers a request only after the ack, so linger is response
		// latency; 5ms (default 10ms) still batches well under load.
		kgo.ProducerLinger(cfg.Linger),
		// Bounded buffering is the backpressure: Publish blocks (until its
		// ctx ends) instead of growing memory while Kafka is slow or down.
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
		// kgo's default, stated because Fits checks items against it so
		// ingest can refuse a too-large item before publishing anything.
		kgo.ProducerBatchMaxBytes(batchMaxBytes),
		// Default 10s: a readiness check or publish fails sooner when a
		// broker does not answer at all.
		kgo.DialTimeout(cfg.DialTimeout),
	}
	if cfg.MaxBufferedBytes > 0 {
		// Items are up to 1 MiB; bound memory by bytes as well as count.
		kopts = append(kopts, kgo.MaxBufferedBytes(cfg.MaxBufferedBytes))
	}
	if cfg.DeliveryTimeout > 0 {
		// Default unlimited: an outage would hold records forever. A record
		// not yet sent is failed after this; one already sent is still
		// waited for (idempotency forbids failing it).
		kopts = append(kopts, kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout))
	}
	cl, err := cfg.Kafka.NewClient(log.With("component", "kafka-producer"), reg, "producer_kafka", kopts...)
	if err != nil {
		return nil, fmt.Errorf("create Kafka client: %w", err)
	}
	f := promreg.With(reg)
	return &Publisher{
		cl:        cl,
		topic:     cfg.Topic,
		log:       log,
		published: f.CounterVec("taillight_producer_records_total", "Records Kafka acknowledged (result=ok) or that failed (result=reason).", "result"),
		bytes:     f.Counter("taillight_producer_record_bytes_total", "Value bytes of the records Kafka acknowledged."),
		failed:    f.CounterVec("taillight_producer_publish_calls_failed_total", "PublishSync/PublishRaw calls that returned an error, by reason.", "reason"),
	}, nil
}

// batchMaxBytes bounds one record batch, uncompressed (kgo's default, below
// Kafka's default message.max.bytes of 1048588).
const batchMaxBytes = 1_000_012

// recordOverhead is room for the batch header, the record's framing and its
// headers within batchMaxBytes.
const recordOverhead = 512

// Fits reports whether item is small enough for one record batch; Kafka (and
// kgo) would refuse a larger one with MESSAGE_TOO_LARGE.
func (p *Publisher) Fits(item RawItem) error {
	if n := len(item.Key) + len(item.Value); n > batchMaxBytes-recordOverhead {
		return fmt.Errorf("item of %d bytes exceeds the %d bytes one Kafka record may hold", n, batchMaxBytes-recordOverhead)
	}
	return nil
}

// Topic is the topic records go to.
func (p *Publisher) Topic() string { return p.topic }

// Client is the underlying franz-go client, for admin calls in tests and
// tools. Do not close it; Close the Publisher.
func (p *Publisher) Client() *kgo.Client { return p.cl }

// Ping checks that a broker answers a metadata request.
func (p *Publisher) Ping(ctx context.Context) error {
	if err := p.cl.Ping(ctx); err != nil {
		return fmt.Errorf("ping Kafka: %w", err)
	}
	return nil
}

// Ready is Ping plus the topic: an error while the topic does not exist
// (publishing would fail), so /readyz does not report ready before it can
// take a POST.
func (p *Publisher) Ready(ctx context.Context) error {
	if err := p.Ping(ctx); err != nil {
		return err
	}
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(p.topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, p.cl)
	if err != nil {
		return fmt.Errorf("read the metadata of topic %s: %w", p.topic, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("topic %s does not exist: create it (see README) or point -kafka.topic at an existing one", p.topic)
			}
			return fmt.Errorf("topic %s: %w", p.topic, err)
		}
		if len(rt.Partitions) == 0 {
			return fmt.Errorf("topic %s has no partitions yet", p.topic)
		}
	}
	return nil
}

// PublishSync encodes items and returns once Kafka acknowledged every one, or
// with the first error (a failed record, or ctx ending first). On error some
// items may still have been written: publishing is at-least-once.
func (p *Publisher) PublishSync(ctx context.Context, items ...*schemas.TraceItem) error {
	raws := make([]RawItem, len(items))
	for i, it := range items {
		v, err := schemas.Marshal(nil, it)
		if err != nil {
			return fmt.Errorf("publish item %d: %w", i, err)
		}
		raws[i] = RawItem{Key: schemas.Key(it), Value: v}
	}
	return p.PublishRaw(ctx, raws...)
}

// PublishRaw publishes already-encoded items (see RawItem for buffer
// ownership) and returns once Kafka acknowledged every one, or with the first
// error; ctx bounds both the wait for buffer space and for the acks. The
// error names the index of the failing item.
func (p *Publisher) PublishRaw(ctx context.Context, items ...RawItem) error {
	_, err := p.publishRaw(ctx, items)
	return err
}

// publishRaw is PublishRaw that also returns a channel closed once every
// item's record is acknowledged or failed: after a context error the
// client may still hold (and read) the items' buffers until then.
func (p *Publisher) publishRaw(ctx context.Context, items []RawItem) (<-chan struct{}, error) {
	done := make(chan struct{})
	if p.closed.Load() {
		close(done)
		return done, ErrClosed
	}
	if len(items) == 0 {
		close(done)
		return done, nil
	}
	var (
		mu        sync.Mutex
		first     error
		remaining atomic.Int64
	)
	remaining.Store(int64(len(items)))
	for i := range items {
		p.produce(ctx, items[i], func(err error) {
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("publish item %d: %w", i, err)
				}
				mu.Unlock()
			}
			if remaining.Add(-1) == 0 {
				close(done)
			}
		})
	}
	var err error
	select {
	case <-done:
		mu.Lock()
		err = first
		mu.Unlock()
	case <-ctx.Done():
		err = fmt.Errorf("publish %d items: waiting for Kafka acks: %w", len(items), ctx.Err())
	}
	if err != nil {
		p.failed.WithLabelValues(Reason(err)).Inc()
	}
	return done, err
}

// Publish encodes item and hands it to the client, blocking while
// MaxBufferedRecords are unacknowledged (until ctx ends). callback (may be
// nil) gets nil once Kafka acknowledged the record, or the error; it runs on
// the client's delivery goroutine, serially with other callbacks, and must
// not block or publish synchronously.
func (p *Publisher) Publish(ctx context.Context, item *schemas.TraceItem, callback func(error)) {
	v, err := schemas.Marshal(nil, item)
	if err != nil {
		if callback != nil {
			callback(err)
		}
		return
	}
	p.PublishRawAsync(ctx, RawItem{Key: schemas.Key(item), Value: v}, callback)
}

// PublishRawAsync is Publish for an already-encoded item.
func (p *Publisher) PublishRawAsync(ctx context.Context, item RawItem, callback func(error)) {
	if p.closed.Load() {
		if callback != nil {
			callback(ErrClosed)
		}
		return
	}
	if callback == nil {
		callback = func(error) {}
	}
	p.produce(ctx, item, callback)
}

func (p *Publisher) produce(ctx context.Context, item RawItem, done func(error)) {
	r := &kgo.Record{Topic: p.topic, Key: item.Key, Value: item.Value, Headers: recordHeaders}
	p.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
		if err != nil {
			p.published.WithLabelValues(Reason(err)).Inc()
		} else {
			p.published.WithLabelValues("ok").Inc()
			p.bytes.Add(float64(len(r.Value)))
		}
		done(err)
	})
}

// Flush waits until every buffered record is acknowledged or failed, or ctx ends.
func (p *Publisher) Flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush Kafka producer: %w", err)
	}
	return nil
}

// Close flushes buffered records until ctx ends, then closes the client
// (records still unacknowledged are failed). Publishing after Close fails
// with ErrClosed.
func (p *Publisher) Close(ctx context.Context) error {
	if p.closed.Swap(true) {
		return nil
	}
	err := p.Flush(ctx)
	p.cl.Close()
	return err
}

// Reason maps a publishing error to a fixed, low-cardinality label value:
// ok, timeout, canceled, too_large, buffer_full, closed, kafka or other.
func Reason(err error) string {
	var ke *kerr.Error
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrRecordTimeout):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return "too_large"
	case errors.Is(err, kgo.ErrMaxBuffered):
		return "buffer_full"
	case errors.Is(err, kgo.ErrClientClosed), errors.Is(err, ErrClosed):
		return "closed"
	case errors.As(err, &ke):
		return "kafka"
	}
	return "other"
}
