// What an architecture gives the engine session: a model that appends tokens to its own cache
// (KV and, for recurrent architectures, state) and returns the logits after the last one. The
// session (../session.ts) validates input, keeps the token list and adapts this to core's
// ModelSession; each architecture file (llama.ts, qwen3-5.ts) only does the math.
import type { ModelConfig } from '../../../core/model-package.ts'
import type { Kernels } from '../kernels.ts'
import type { LoadContext } from './load-context.ts'

export interface EngineAppendOptions {
  /** Keep the state after this append so rewind() can return to it (recurrent models only). */
  readonly checkpoint: boolean
  /** Checked at each turn (below). */
  readonly signal?: AbortSignal
  /**
   * Awaited at each turn of a long append (more than BASE_PASS_TOKENS tokens, never before its
   * first pass): between its passes, and inside a pass between two layers once `sliceMs` have
   * passed since the last turn (./pass-size.ts). The session gives the host's event loop its turn
   * there, so a server answers others and an abort can land, and throws when the session was
   * disposed meanwhile.
   */
  readonly between?: () => Promise<void>
  /**
   * The stretch of a pass after which a turn is due between two layers (default TURN_SLICE_MS);
   * 0 takes one at every layer boundary (tests).
   */
  readonly sliceMs?: number
}

export interface EngineModel {
  readonly config: ModelConfig
  /** Weight format that was loaded ('fp32' | 'fp16' | 'q8' | 'q4'). */
  readonly dtype: string
  readonly vocabularySize: number
  /** Most tokens the cache may hold. */
  readonly contextLength: number
  /** Tokens the cache holds now. */
  readonly length: number
  readonly kernels: Kernels
  /**
   * Runs tokenIds (already validated: in the vocabulary, and fitting the context) at positions
   * length.. and returns the logits after the last one as a fresh Float32Array. At each turn
   * (options.between) other sessions of the instance may run their passes, which is safe because
   * between two layers a pass keeps nothing in the shared working buffers, only in the session's
   * own residual stream, and the last pass copies the logits out of the shared buffer in the same
   * synchronous step that computes them (not after an await, where another session may overwrite them).
   */
  append(tokenIds: readonly number[], options: EngineAppendOptions): Promise<Float32Array>
  /** Cuts the cache back to `length` tokens; false when the state cannot go back there. */
  rewind(length: number): boolean
  /** The longest length up to `limit` that rewind() returns to (the current one when `limit` reaches it). */
  rewindableLength(limit: number): number
  reset(): void
  /**
   * A further session over the same instance: the weights and working buffers are shared, the
   * length, residual stream, cache (and recurrent state) are its own. Layers run one at a time
   * (each is synchronous) and use the working buffers only within the layer, which is what makes
   * sharing them safe.
   */
  createSession(): EngineModel
  /** Gives this session's cache back to the instance for a later session; the session is not used again. */
  release(): void
}

/** Builds a model from a package's ONNX graph(s); registered per model_type in ./index.ts. */
export type ModelLoader = (context: LoadContext) => Promise<EngineModel>
