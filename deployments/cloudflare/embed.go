// Package cloudflare embeds the taillight Tail Workers so Go tests run the
// very files that are deployed (deployments/cloudflare/*.js).
package cloudflare

import _ "embed"

// TailWorkerJS is the source of tail-worker.js, an ES module whose default
// export has a tail(events, env) handler. It imports ForwardName.
//
//go:embed tail-worker.js
var TailWorkerJS string

// TailWorkerName is the module name the Tail Worker is deployed under.
const TailWorkerName = "tail-worker.js"

// ForwardJS is the source of taillight-forward.js, the batching and retry
// code every taillight Tail Worker imports (export forward(events, env,
// workerId)).
//
//go:embed taillight-forward.js
var ForwardJS string

// ForwardName is the module name the Tail Workers import ForwardJS as.
const ForwardName = "taillight-forward.js"

// DynamicWorkerTailJS is the source of dynamic-worker-tail.js: the
// WorkerEntrypoint class DynamicWorkerTail, attached to Dynamic Workers
// with tails: [ctx.exports.DynamicWorkerTail({props: {workerId}})]. It
// imports ForwardName.
//
//go:embed dynamic-worker-tail.js
var DynamicWorkerTailJS string

// DynamicWorkerTailName is the module name of DynamicWorkerTailJS.
const DynamicWorkerTailName = "dynamic-worker-tail.js"

// LoaderExampleJS is the source of loader-example.js, a loader Worker that
// creates Dynamic Workers with a DynamicWorkerTail attached. It imports
// DynamicWorkerTailName.
//
//go:embed loader-example.js
var LoaderExampleJS string

// LoaderExampleName is the module name of LoaderExampleJS.
const LoaderExampleName = "loader-example.js"
