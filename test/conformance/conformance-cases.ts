// The backend conformance suite: one body of checks that every backend must pass on the same
// seeded fixture packages (Node: onnxruntime-node and onnxruntime-web WASM; Chromium: WASM and
// WebGPU). It uses no test framework and no platform API, so a browser page can run it as is:
// a case throws on failure and returns what the runner compares across backends (greedy tokens,
// logits). Hosts provide the sessions through a ConformanceHarness.
import { ContextLengthError } from '../../core/errors.ts'
import { type GenerationTokenizer, generateText } from '../../core/generate.ts'
import type { ModelSession } from '../../core/model-session.ts'

export type ConformanceFixture = 'llama' | 'qwen3' | 'qwen3_5'

export const conformanceFixtures: readonly ConformanceFixture[] = ['llama', 'qwen3', 'qwen3_5']

export interface LoadedForConformance {
  readonly session: ModelSession
  readonly tokenizer: GenerationTokenizer
}

export interface ConformanceHarness {
  /** 'native' | 'wasm' | 'webgpu' | ... */
  readonly backend: string
  /** The fixture's fp32 package as a session + tokenizer on this backend (may be cached by the harness). */
  load(fixture: ConformanceFixture): Promise<LoadedForConformance>
  /** Logits tolerance when comparing two runs on this backend (CPU 1e-4; WebGPU 1e-3). */
  readonly tolerance: number
}

export interface ConformanceResult {
  /** Greedy continuation of `conformancePrompt` (12 tokens). */
  readonly greedyTokens?: readonly number[]
  /** Logits after the prompt, first 64 entries (for cross-backend comparison within 1e-3). */
  readonly promptLogitsHead?: readonly number[]
}

export interface ConformanceCase {
  readonly name: string
  run(harness: ConformanceHarness, fixture: ConformanceFixture): Promise<ConformanceResult>
}

/** Token ids below 512, so they are valid in every fixture (full Qwen3 vocabulary or a small test one). */
export const conformancePrompt: readonly number[] = [9, 101, 7, 199, 3, 88, 401, 56]

export class ConformanceFailure extends Error {
  override readonly name = 'ConformanceFailure'
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new ConformanceFailure(message)
}

function argmax(values: Float32Array): number {
  let best = 0
  for (let index = 1; index < values.length; index++)
    if ((values[index] as number) > (values[best] as number)) best = index
  return best
}

export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0
  for (let index = 0; index < Math.max(a.length, b.length); index++)
    max = Math.max(max, Math.abs((a[index] ?? Number.NaN) - (b[index] ?? Number.NaN)))
  return Number.isNaN(max) ? Number.POSITIVE_INFINITY : max
}

function allFinite(values: Float32Array): boolean {
  for (const value of values) if (!Number.isFinite(value)) return false
  return true
}

export const conformanceCases: readonly ConformanceCase[] = [
  {
    name: 'prefill then greedy decode: finite logits of the right size, tokens recorded',
    async run(harness, fixture) {
      const { session } = await harness.load(fixture)
      await session.reset()
      let logits = await session.append(conformancePrompt)
      check(
        logits.length === session.info.vocabularySize,
        `logits have ${logits.length} entries, expected ${session.info.vocabularySize}`,
      )
      check(allFinite(logits), 'prompt logits contain NaN or Infinity')
      const promptLogitsHead = Array.from(logits.subarray(0, 64))
      const greedyTokens: number[] = []
      for (let step = 0; step < 12; step++) {
        const token = argmax(logits)
        greedyTokens.push(token)
        logits = await session.append([token])
      }
      check(
        session.tokens.length === conformancePrompt.length + 12,
        `session.tokens has ${session.tokens.length} ids after prompt + 12 steps`,
      )
      check(
        session.tokens.slice(0, conformancePrompt.length).join() === conformancePrompt.join(),
        'session.tokens does not start with the prompt',
      )
      return { greedyTokens, promptLogitsHead }
    },
  },
  {
    name: 'one prefill equals token-by-token feeding (mask and positions across steps)',
    async run(harness, fixture) {
      const { session } = await harness.load(fixture)
      await session.reset()
      const whole = await session.append(conformancePrompt)
      await session.reset()
      let stepwise: Float32Array = new Float32Array(0)
      for (const token of conformancePrompt) stepwise = await session.append([token])
      const difference = maxAbsDifference(whole, stepwise)
      check(
        difference < Math.max(harness.tolerance, 1e-3),
        `prefill vs token-by-token logits differ by ${difference}`,
      )
      // Two chunks (prefill, then a multi-token append with a non-empty cache) agree as well.
      await session.reset()
      await session.append(conformancePrompt.slice(0, 3))
      const chunked = await session.append(conformancePrompt.slice(3))
      const chunkDifference = maxAbsDifference(whole, chunked)
      check(
        chunkDifference < Math.max(harness.tolerance, 1e-3),
        `prefill vs two chunks differ by ${chunkDifference}`,
      )
      return {}
    },
  },
  {
    name: 'rewind: KV caches slice to any length; recurrent state only to a checkpoint',
    async run(harness, fixture) {
      const { session } = await harness.load(fixture)
      await session.reset()
      const afterPrompt = await session.append(conformancePrompt)
      const first = argmax(afterPrompt)
      const afterFirst = await session.append([first])
      await session.append([argmax(afterFirst)])
      const recurrent = fixture === 'qwen3_5'
      const middle = conformancePrompt.length + 1
      const rewoundMiddle = await session.rewind(middle)
      check(
        rewoundMiddle === !recurrent,
        `rewind(${middle}) returned ${rewoundMiddle}; expected ${!recurrent} (${recurrent ? 'no checkpoint there' : 'KV cache slices'})`,
      )
      check(
        await session.rewind(conformancePrompt.length),
        'rewind to the end of the prompt (a checkpoint) failed',
      )
      check(
        session.tokens.length === conformancePrompt.length,
        `after rewind session.tokens has ${session.tokens.length} ids`,
      )
      const again = await session.append([first])
      const difference = maxAbsDifference(again, afterFirst)
      check(difference < harness.tolerance, `logits after rewind + re-append differ by ${difference}`)
      check((await session.rewind(0)) && session.tokens.length === 0, 'rewind(0) must empty the cache')
      return {}
    },
  },
  {
    name: 'core generate over two turns reuses the cache and matches a fresh session',
    async run(harness, fixture) {
      const { session, tokenizer } = await harness.load(fixture)
      await session.reset()
      const sampling = { temperature: 0 }
      const first = await generateText(session, tokenizer, {
        promptTokenIds: conformancePrompt,
        maxTokens: 4,
        sampling,
      })
      const secondPrompt = [...conformancePrompt, ...first.tokenIds, 13, 42]
      const continued = await generateText(session, tokenizer, {
        promptTokenIds: secondPrompt,
        maxTokens: 4,
        sampling,
      })
      await session.reset()
      const fresh = await generateText(session, tokenizer, {
        promptTokenIds: secondPrompt,
        maxTokens: 4,
        sampling,
      })
      check(
        continued.tokenIds.join() === fresh.tokenIds.join(),
        `second turn gave ${continued.tokenIds} with the cache, ${fresh.tokenIds} fresh`,
      )
      return {}
    },
  },
  {
    name: 'a prompt longer than the context is a ContextLengthError and leaves the cache empty',
    async run(harness, fixture) {
      const { session } = await harness.load(fixture)
      await session.reset()
      let error: unknown
      try {
        // Checked before anything runs, so this costs nothing even for a long context.
        await session.append(
          Array.from(
            { length: session.info.contextLength + 1 },
            (_, index) => conformancePrompt[index % conformancePrompt.length] as number,
          ),
        )
      } catch (caught) {
        error = caught
      }
      check(error instanceof ContextLengthError, `expected ContextLengthError, got ${String(error)}`)
      check(session.tokens.length === 0, 'a refused append must not change the cache')
      return {}
    },
  },
]
