// A test-only Worker entry: what the engine's prefill passes take in a Workers isolate
// (wasm/engine/models/pass-size.ts), read from inside real workerd.
import { BASE_PASS_TOKENS, PassPlan, runsInWorker } from '../../wasm/engine/models/pass-size.ts'

export default {
  async fetch(request: Request): Promise<Response> {
    if (new URL(request.url).pathname === '/healthz') return new Response('ok')
    const inWorker = runsInWorker()
    return Response.json({
      runsInWorker: inWorker,
      // A long prompt's first pass, as the models plan it.
      firstPass: new PassPlan(inWorker).next(10 * BASE_PASS_TOKENS),
      hasWorkerGlobalScope: typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope,
    })
  },
}
