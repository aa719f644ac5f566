// Example loader Worker for Dynamic Workers, observed by taillight.
//
// GET /<workerId>/… runs the Dynamic Worker <workerId>, whose code (one ES
// module) the loader reads from env.SCRIPTS (a KV namespace, or any binding
// with get(id) returning the source or null). Each Dynamic Worker gets a
// DynamicWorkerTail attached with its id in props, so every TraceItem it
// produces reaches taillight with worker_id = <workerId>:
//
//   tails: [ctx.exports.DynamicWorkerTail({ props: { workerId } })]
//
// Bindings: LOADER (worker_loaders), SCRIPTS, and the Tail Worker's
// INGEST_URL and INGEST_TOKEN (see README.md, "Dynamic Workers").
// ctx.exports needs the enable_ctx_exports compatibility flag where the
// compatibility date does not turn it on.

export { DynamicWorkerTail } from "./dynamic-worker-tail.js";

// Dynamic Worker ids taillight accepts (the same rule as ingest's).
const WORKER_ID = /^[A-Za-z0-9._:\/@+=-]{1,128}$/;

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const workerId = decodeURIComponent(url.pathname.split("/")[1] || "");
    if (!WORKER_ID.test(workerId)) {
      return new Response("want /<workerId>/…\n", { status: 404 });
    }
    const source = await env.SCRIPTS.get(workerId);
    if (source === null || source === undefined) {
      return new Response(`no Worker ${workerId}\n`, { status: 404 });
    }
    const worker = env.LOADER.get(workerId, () => ({
      compatibilityDate: "2025-06-01",
      mainModule: "index.js",
      modules: { "index.js": source },
      // No network for code you do not trust.
      globalOutbound: null,
      tails: [ctx.exports.DynamicWorkerTail({ props: { workerId } })],
    }));
    return worker.getEntrypoint().fetch(request);
  },
};
