// Package cloudflare embeds the taillight Tail Worker so Go tests run the
// very file that is deployed (deployments/cloudflare/tail-worker.js).
package cloudflare

import _ "embed"

// TailWorkerJS is the source of tail-worker.js, an ES module whose default
// export has a tail(events, env) handler.
//
//go:embed tail-worker.js
var TailWorkerJS string

// TailWorkerName is the module name the Tail Worker is deployed under.
const TailWorkerName = "tail-worker.js"
