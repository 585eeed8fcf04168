// A deterministic in-memory ModelSession: its logits are a pure function of the token history
// (a running hash), so every part of the stack (generation loop, worker, SDK, handoff) can be
// tested without a model, and two sessions fed the same tokens agree exactly, like a device and
// an edge running the same weights.
import { AbortedError, BackendError, InvalidArgumentError } from '../../core/errors.ts'
import type { ModelSession, ModelSessionInfo, RunOptions } from '../../core/model-session.ts'

export interface TestSessionOptions {
  /** Length of each logits vector. Default 512 (use a tokenizer's size to decode real text). */
  readonly vocabularySize?: number
  /** Most tokens the cache holds. Default 4096. */
  readonly contextLength?: number
  readonly modelId?: string
  readonly backend?: string
  readonly dtype?: string
  /**
   * The append at position `failAtToken` (0 = the prompt's prefill, however many chunks it takes,
   * 1 = feeding the first generated token, ...) and every later one throw a retryable
   * BackendError: generation yields exactly `failAtToken` tokens, then fails, as a device backend
   * dying mid-answer does.
   */
  readonly failAtToken?: number
  /** Milliseconds each append takes (a slow device); an AbortSignal cuts the wait short. */
  readonly delayMs?: number
  /** Gives this token a +100 logit (wins greedy and sampled draws) once the cache holds `atLength` tokens. */
  readonly eos?: { readonly tokenId: number; readonly atLength: number }
  /** Scripts the output: the token returned here for a history gets +50. */
  readonly favor?: (tokens: readonly number[]) => number | undefined
  /**
   * When false, rewind() refuses (as a recurrent state without checkpoints does) and callers reset.
   * 'checkpoints': rewind() goes back only to where an append kept a checkpoint (RunOptions), as
   * the ORT session of a Qwen3.5 model does.
   */
  readonly rewindable?: boolean | 'checkpoints'
}

export interface TestSession extends ModelSession {
  /** How many append calls ran (including failed ones), and the token counts they carried. */
  readonly appendCalls: readonly number[]
  readonly disposed: boolean
}

function mix32(value: number): number {
  let h = value >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

function wait(milliseconds: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortedError())
      return
    }
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(new AbortedError())
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, milliseconds)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Creates a deterministic in-memory ModelSession (see TestSessionOptions). */
export function createTestSession(options: TestSessionOptions = {}): TestSession {
  const vocabularySize = options.vocabularySize ?? 512
  const contextLength = options.contextLength ?? 4096
  if (!Number.isInteger(vocabularySize) || vocabularySize < 2) {
    throw new InvalidArgumentError('vocabularySize', 'vocabularySize must be a whole number ≥ 2.')
  }
  if (!Number.isInteger(contextLength) || contextLength < 1) {
    throw new InvalidArgumentError('contextLength', 'contextLength must be a whole number ≥ 1.')
  }
  const info: ModelSessionInfo = {
    modelId: options.modelId ?? 'test-model',
    vocabularySize,
    contextLength,
    backend: options.backend ?? 'test',
    dtype: options.dtype ?? 'fp32',
  }
  const tokens: number[] = []
  // hashes[i] = hash of tokens[0..i]; kept per position so rewind is exact.
  const hashes: number[] = []
  const appendCalls: number[] = []
  let disposed = false
  let decodeSteps = 0
  // Lengths an append kept a checkpoint at (rewindable: 'checkpoints').
  const checkpoints = new Set<number>()

  const logitsFor = (): Float32Array => {
    const logits = new Float32Array(vocabularySize)
    const state = hashes.length === 0 ? 0x12345678 : hashes[hashes.length - 1]!
    for (let id = 0; id < vocabularySize; id++) {
      const u = mix32(state ^ Math.imul(id + 1, 0x9e3779b1)) / 4294967296
      // Peaked like a real model: most tokens near 0, a handful up to 12.
      const u2 = u * u
      const u4 = u2 * u2
      const u8 = u4 * u4
      logits[id] = 12 * u8 * u8 * u8 // u^24 by squaring: Math.pow per entry dominated the step
    }
    const favored = options.favor?.(tokens)
    if (favored !== undefined && favored >= 0 && favored < vocabularySize) logits[favored]! += 50
    if (options.eos !== undefined && tokens.length >= options.eos.atLength)
      logits[options.eos.tokenId]! += 100
    return logits
  }

  const session: TestSession = {
    info,
    get tokens() {
      return tokens
    },
    get appendCalls() {
      return appendCalls
    },
    get disposed() {
      return disposed
    },
    async append(tokenIds: readonly number[], runOptions: RunOptions = {}): Promise<Float32Array> {
      if (disposed)
        throw new BackendError('backend_failed', 'This test session was disposed; create a new one.')
      if (!Array.isArray(tokenIds) || tokenIds.length === 0) {
        throw new InvalidArgumentError('tokenIds', 'append() needs at least one token id.')
      }
      // Prompt chunks (appends that keep a checkpoint) are all position 0; decode steps count up.
      if (!(runOptions.checkpoint ?? tokenIds.length > 1)) decodeSteps++
      const call = decodeSteps
      appendCalls.push(tokenIds.length)
      if (options.delayMs !== undefined && options.delayMs > 0) await wait(options.delayMs, runOptions.signal)
      if (runOptions.signal?.aborted) throw new AbortedError()
      if (options.failAtToken !== undefined && call >= options.failAtToken) {
        throw new BackendError(
          'backend_failed',
          `The test session failed on purpose at append call ${call}.`,
          {
            isRetryable: true,
          },
        )
      }
      for (const id of tokenIds) {
        if (!Number.isInteger(id) || id < 0 || id >= vocabularySize) {
          throw new InvalidArgumentError(
            'tokenIds',
            `Token id ${id} is outside the vocabulary (0..${vocabularySize - 1}).`,
          )
        }
      }
      if (tokens.length + tokenIds.length > contextLength) {
        throw new BackendError(
          'context_length_exceeded',
          `The cache would hold more than ${contextLength} tokens.`,
        )
      }
      for (const id of tokenIds) {
        const previous = hashes.length === 0 ? 0x12345678 : hashes[hashes.length - 1]!
        hashes.push(mix32(previous ^ mix32(id + 0x632be5ab)))
        tokens.push(id)
      }
      if (runOptions.checkpoint ?? tokenIds.length > 1) checkpoints.add(tokens.length)
      return logitsFor()
    },
    async rewind(length: number): Promise<boolean> {
      if (!Number.isInteger(length) || length < 0 || length > tokens.length) {
        throw new InvalidArgumentError(
          'length',
          `rewind() takes a length in 0..${tokens.length}; got ${length}.`,
        )
      }
      if (length !== tokens.length && length !== 0) {
        if (options.rewindable === false) return false
        if (options.rewindable === 'checkpoints' && !checkpoints.has(length)) return false
      }
      for (const checkpoint of checkpoints) if (checkpoint > length) checkpoints.delete(checkpoint)
      tokens.length = length
      hashes.length = length
      return true
    },
    async reset(): Promise<void> {
      checkpoints.clear()
      tokens.length = 0
      hashes.length = 0
    },
    async dispose(): Promise<void> {
      disposed = true
      tokens.length = 0
      hashes.length = 0
    },
  }
  return session
}
