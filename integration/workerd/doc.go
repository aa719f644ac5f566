// Package workerd holds tests that run the real Workers runtime (workerd,
// installed from npm by deployments/local/install-workerd.sh) with the
// repository's Tail Worker (deployments/cloudflare/tail-worker.js) attached:
// the differential redaction test against the runtime, and the Tail Worker's
// batching and retry behaviour. Without workerd they skip, naming the install
// script; with TAILLIGHT_E2E=1 they fail instead.
package workerd
