// The one interface between the shared generation loop and whatever runs the model: ONNX
// Runtime (web or node), a test double, or anything else. A session owns its cache (KV and, for
// Qwen3.5, conv/recurrent state) and always knows which token ids that cache holds.

export interface ModelSessionInfo {
  /** Model id (package name), for usage reports and fingerprints. */
  readonly modelId: string
  /** Length of every logits vector this session returns. */
  readonly vocabularySize: number
  /** Most tokens the cache may hold (prompt + output). */
  readonly contextLength: number
  /** Where it runs: 'wasm' | 'webgpu' | 'native' | 'test' | ... */
  readonly backend: string
  /** Weight format that was loaded: 'fp32' | 'fp16' | 'q4' | 'q4f16' | 'q8' | ... */
  readonly dtype: string
  /**
   * True where the logits do not depend on how the tokens were cut into appends (the WebAssembly
   * engine: every output has one reduction order whatever the split). The generation loop then
   * resumes a prompt anywhere in what the cache shares with it (a next turn after the previous
   * answer's tokens), not only where a cold run would cut the prompt. Absent: false.
   */
  readonly splitInvariant?: boolean
}

export interface RunOptions {
  readonly signal?: AbortSignal
  /**
   * Called while a long append is under way (the engine: between its passes), so a caller that
   * takes a silent generation for a dead one (a server's slot lease) sees that it is alive.
   */
  readonly onProgress?: () => void
  /**
   * Keep the state after this append so that rewind() can come back to it later. Only sessions
   * that cannot rewind everywhere (recurrent state) need it. Default: true for an append of more
   * than one token (a prompt or a turn), false for one (a decode step).
   */
  readonly checkpoint?: boolean
}

export interface ModelSession {
  readonly info: ModelSessionInfo
  /** The token ids the cache holds now, oldest first. */
  readonly tokens: readonly number[]
  /**
   * Appends `tokenIds` (at least one) to the cache and returns the logits for the position after
   * the last of them: a Float32Array of `info.vocabularySize` that the caller may modify.
   * Prefill of many tokens and decode of one are the same call.
   */
  append(tokenIds: readonly number[], options?: RunOptions): Promise<Float32Array>
  /**
   * Drops the cache back to its first `length` tokens. Returns false when the session cannot
   * (a recurrent state with no checkpoint at that length); the caller then resets and re-feeds.
   */
  rewind(length: number): Promise<boolean>
  /**
   * The longest length up to `limit` that rewind() can return to (the current length when `limit`
   * reaches it, 0 at worst). Optional: without it, a split-invariant session is asked for `limit`.
   */
  rewindableLength?(limit: number): number
  /** Empties the cache. */
  reset(): Promise<void>
  /** Frees the backend resources. The session is unusable afterwards. */
  dispose(): Promise<void>
}
