// taillight Tail Worker: forwards the TraceItems of every tail() call to
// `taillight ingest`. Attach it to the Workers you observe with
// "tail_consumers" (README.md). The batching, retries and env variables are
// those of taillight-forward.js.

import { forward } from "./taillight-forward.js";

export default {
  async tail(events, env) {
    await forward(events, env);
  },
};
