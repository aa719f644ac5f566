// taillight Tail Worker for Dynamic Workers: a WorkerEntrypoint class that a
// loader Worker exports and attaches to each Dynamic Worker it creates,
//
//   tails: [ctx.exports.DynamicWorkerTail({ props: { workerId } })]
//
// TraceItems do not say which Dynamic Worker produced them, so each
// instance forwards its events with this.ctx.props.workerId, which taillight
// stores as worker_id (README.md "Dynamic Workers"). props.workerId is the
// only prop taillight keeps; an instance without one forwards the events
// unattributed. The env (INGEST_URL, INGEST_TOKEN, …) is the loader
// Worker's: see taillight-forward.js.

import { WorkerEntrypoint } from "cloudflare:workers";
import { forward } from "./taillight-forward.js";

export class DynamicWorkerTail extends WorkerEntrypoint {
  async tail(events) {
    await forward(events, this.env, this.ctx.props?.workerId);
  }
}
