// taillight-forward.js: what every taillight Tail Worker shares. forward()
// sends the TraceItems of one tail() call to `taillight ingest` as
// JSON.stringify(events), with a bearer token. tail-worker.js (attached with
// tail_consumers) and dynamic-worker-tail.js (attached to Dynamic Workers
// with tails: [...]) are thin wrappers around it.
//
// env:
//   INGEST_URL       where to POST, e.g. https://taillight.example/v1/traces (required)
//   INGEST_TOKEN     bearer token; set it as a secret: `wrangler secret put INGEST_TOKEN`
//   MAX_BATCH_BYTES  split a tail() batch into POSTs of at most this many bytes (default 1048576)
//   MAX_ATTEMPTS     attempts per POST, first included (default 5)
//   RETRY_BASE_MS    first retry delay; doubles per attempt, with jitter (default 500)
//   RETRY_MAX_MS     cap on one delay, Retry-After included (default 10000)
//
// One tail() call is one POST, unless its JSON exceeds MAX_BATCH_BYTES: then it
// is cut between items into several POSTs, each still a JSON array, sent in
// order. A 5xx, 408, 429 or network error is retried with bounded exponential
// backoff, honouring Retry-After; other 4xx answers are not (the batch would
// fail again) and are logged. A batch that could not be delivered makes
// forward() throw, so the failure shows as the Tail Worker's exception.

const DEFAULTS = {
  maxBatchBytes: 1 << 20,
  maxAttempts: 5,
  retryBaseMs: 500,
  retryMaxMs: 10000,
};

// forward sends events (the TraceItems of one tail() call) to taillight
// ingest. A non-empty workerId names the Dynamic Worker that produced them:
// it goes with every POST as ?workerId=, and ingest adds it to every item
// (see README.md, "Dynamic Workers"). It throws when a batch could not be
// delivered.
export async function forward(events, env, workerId) {
  if (!Array.isArray(events) || events.length === 0) {
    return;
  }
  const opts = options(env);
  let url = opts.url;
  if (workerId !== undefined && workerId !== null && workerId !== "") {
    const u = new URL(url);
    u.searchParams.set("workerId", String(workerId));
    url = u.toString();
  }
  let failed = 0;
  for (const body of batches(events, opts.maxBatchBytes)) {
    if (!(await post(url, body, opts))) {
      failed++;
    }
  }
  if (failed > 0) {
    throw new Error(`taillight: ${failed} batch(es) of ${events.length} trace item(s) not delivered to ${opts.url}`);
  }
}

function options(env) {
  if (!env.INGEST_URL) {
    throw new Error("taillight: INGEST_URL is not set");
  }
  const num = (v, d) => {
    const n = Number(v);
    return v !== undefined && v !== "" && Number.isFinite(n) && n >= 0 ? n : d;
  };
  return {
    url: env.INGEST_URL,
    token: env.INGEST_TOKEN || "",
    maxBatchBytes: Math.max(1, num(env.MAX_BATCH_BYTES, DEFAULTS.maxBatchBytes)),
    maxAttempts: Math.max(1, Math.floor(num(env.MAX_ATTEMPTS, DEFAULTS.maxAttempts))),
    retryBaseMs: num(env.RETRY_BASE_MS, DEFAULTS.retryBaseMs),
    retryMaxMs: num(env.RETRY_MAX_MS, DEFAULTS.retryMaxMs),
  };
}

const encoder = new TextEncoder();

// batches yields JSON array texts of at most maxBytes UTF-8 bytes each,
// cutting only between items (an item larger than maxBytes goes alone). With
// no cut the text is exactly JSON.stringify(events).
function* batches(events, maxBytes) {
  let parts = [];
  let size = 2; // "[" and "]"
  for (const ev of events) {
    const s = JSON.stringify(ev) ?? "null";
    const n = encoder.encode(s).length;
    const add = (parts.length > 0 ? 1 : 0) + n;
    if (parts.length > 0 && size + add > maxBytes) {
      yield "[" + parts.join(",") + "]";
      parts = [];
      size = 2;
    }
    size += (parts.length > 0 ? 1 : 0) + n;
    parts.push(s);
  }
  if (parts.length > 0) {
    yield "[" + parts.join(",") + "]";
  }
}

// post sends one batch to url, retrying transient failures; true once
// accepted (2xx).
async function post(url, body, opts) {
  const headers = { "content-type": "application/json" };
  if (opts.token) {
    headers.authorization = `Bearer ${opts.token}`;
  }
  for (let attempt = 1; ; attempt++) {
    let res;
    let why;
    try {
      res = await fetch(url, { method: "POST", headers, body });
      if (res.ok) {
        await res.body?.cancel();
        return true;
      }
      why = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
    } catch (err) {
      why = `network error: ${err}`;
    }
    const retryable = !res || res.status >= 500 || res.status === 408 || res.status === 429;
    if (!retryable || attempt >= opts.maxAttempts) {
      console.error(`taillight: giving up on a batch of ${encoder.encode(body).length} bytes after ${attempt} attempt(s): ${why}`);
      return false;
    }
    let delay = opts.retryBaseMs * 2 ** (attempt - 1);
    delay = delay / 2 + (Math.random() * delay) / 2; // jitter: spread retries of many isolates
    const after = res ? retryAfterMs(res.headers.get("retry-after")) : null;
    if (after !== null) {
      delay = after;
    }
    await sleep(Math.min(delay, opts.retryMaxMs));
  }
}

// retryAfterMs parses Retry-After (delta-seconds or an HTTP date) into
// milliseconds; null when absent or unparsable.
function retryAfterMs(v) {
  if (v === null || v === undefined || v.trim() === "") {
    return null;
  }
  if (/^\s*\d+\s*$/.test(v)) {
    return Number(v) * 1000;
  }
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.max(0, t - Date.now());
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
