package schemas

import (
	"io"
	"testing"
)

// typicalItem is a ~1 KB fetch TraceItem as production sends it: a script
// name, timings, cf with a colo, a handful of headers and two log lines.
const typicalItem = `{"wallTime":38,"cpuTime":4,"truncated":false,"executionModel":"stateless","outcome":"ok","scriptName":"checkout-api","diagnosticsChannelEvents":[],"exceptions":[],"logs":[{"message":["cart loaded",{"items":3,"currency":"EUR"}],"level":"log","timestamp":1795312410203},{"message":["upstream latency ms",27],"level":"info","timestamp":1795312410229}],"eventTimestamp":1795312410158,"event":{"request":{"url":"https://shop.example.com/api/v1/carts/8c5f0e2a-41d3-4b6e-9f57-2a8d1c3e7b90/items?page=2","method":"POST","headers":{"accept":"application/json","accept-encoding":"gzip, br","authorization":"REDACTED","cf-connecting-ip":"203.0.113.7","content-type":"application/json","cookie":"REDACTED","host":"shop.example.com","user-agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36","x-request-id":"r-77121"},"cf":{"colo":"FRA","country":"DE","asn":3320,"httpProtocol":"HTTP/2","tlsVersion":"TLSv1.3","clientTcpRtt":12}},"response":{"status":201}}}`

func BenchmarkUnmarshalTypical(b *testing.B) {
	raw := []byte(typicalItem)
	var it TraceItem
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Unmarshal(raw, &it); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
}

func BenchmarkMarshalTypical(b *testing.B) {
	var it TraceItem
	if err := Unmarshal([]byte(typicalItem), &it); err != nil {
		b.Fatal(err)
	}
	buf, _ := Marshal(nil, &it)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = Marshal(buf[:0], &it)
	}
}

func BenchmarkReaderArray100(b *testing.B) {
	raw := []byte("[")
	for i := range 100 {
		if i > 0 {
			raw = append(raw, ',')
		}
		raw = append(raw, typicalItem...)
	}
	raw = append(raw, ']')
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var it TraceItem
	for b.Loop() {
		rd := NewReader(bytesReader(raw))
		for {
			if _, err := rd.Next(&it); err != nil {
				break
			}
		}
	}
}

func bytesReader(b []byte) *byteReader { return &byteReader{b: b} }

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func BenchmarkUnmarshalZeroCopyTypical(b *testing.B) {
	raw := []byte(typicalItem)
	var it TraceItem
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := unmarshalZeroCopy(raw, &it); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkDecoderTypical is the processor's path: unmarshalZeroCopy into
// memory the Decoder reuses.
func BenchmarkDecoderTypical(b *testing.B) {
	raw := []byte(typicalItem)
	var dec Decoder
	var it TraceItem
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := dec.DecodeZeroCopy(raw, &it); err != nil {
			b.Fatal(err)
		}
	}
}
