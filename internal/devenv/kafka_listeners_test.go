package devenv

import (
	"strings"
	"testing"
)

func TestKafkaListenersValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		ls   []KafkaListener
		want string // "" = valid
	}{
		{"none", nil, ""},
		{"sasl and ssl", []KafkaListener{{"SASL", "SASL_PLAINTEXT"}, {"TLS_2", "SSL"}}, ""},
		{"reserved name", []KafkaListener{{"PLAINTEXT", "SSL"}}, "listener name"},
		{"controller", []KafkaListener{{"CONTROLLER", "SASL_SSL"}}, "listener name"},
		{"lower case", []KafkaListener{{"sasl", "SASL_SSL"}}, "listener name"},
		{"duplicate", []KafkaListener{{"A", "SSL"}, {"A", "SASL_SSL"}}, "listener name"},
		{"bad protocol", []KafkaListener{{"A", "TLS"}}, `protocol "TLS"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := KafkaConfig{Listeners: tc.ls}
			err := c.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v; want %q", err, tc.want)
			}
		})
	}
}
