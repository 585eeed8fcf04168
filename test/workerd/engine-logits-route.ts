// The test-only route of engine-logits-entry.ts, shared with the Node side of the test (which
// cannot import the entry: it imports engine.wasm as a precompiled module, workerd's way).

/** Only the test bundle answers it; the shipped Worker has no such route. */
export const engineLogitsPath = '/test-only/engine-logits'

export interface EngineLogitsRequest {
  readonly dtype: string
  /** Appended in one piece, then... */
  readonly prompt: readonly number[]
  /** ...one token at a time. */
  readonly steps: readonly number[]
}
