// A short answer on a loaded model that measures real decode speed, because capability flags
// alone (probe.ts) don't predict success.
import { AbortedError, InvalidArgumentError } from '../core/errors.ts'
import { generate } from '../core/generate.ts'
import type { ModelSession } from '../core/model-session.ts'
import type { FinishPart } from '../core/stream-parts.ts'
import type { Tokenizer } from '../core/tokenizer.ts'
import type { Backend } from './dtype.ts'

export interface DecodeSpeed {
  /** Decode tokens per second of the generation loop (the finish part's decodeTokensPerSecond). */
  readonly tokensPerSecond: number
  readonly decodeTokens: number
  readonly prefillMs: number
  readonly backend: Backend | string
}

/**
 * The one speed probe: a short greedy answer through core's generation loop (sampler, stop
 * strings and detokenisation included, EOS banned so it runs full length), timed as that loop
 * times every answer: tokens after the first over the time since the first. This is the rate at
 * which a user sees text appear (a worker adds one message per token, well under a millisecond),
 * and the rate the SDK's stall watch measures mid-answer, so both compare the same figure with
 * minDeviceTokensPerSecond. Raw `append` + argmax would overstate it by the loop's own work.
 * The session is reset afterwards, so the probe leaves nothing in the cache.
 */
export async function measureDecodeSpeed(
  model: { readonly session: ModelSession; readonly tokenizer: Tokenizer },
  options: { tokens?: number; signal?: AbortSignal } = {},
): Promise<DecodeSpeed> {
  const tokens = options.tokens ?? 16
  if (!Number.isInteger(tokens) || tokens < 2 || tokens > 512)
    throw new InvalidArgumentError('tokens', 'tokens must be an integer from 2 to 512.')
  const { session, tokenizer } = model
  // Any short prompt times decode alike; it must only hold ids the model has (a test model's
  // vocabulary may be smaller than its tokenizer's).
  const vocabulary = session.info.vocabularySize
  const noEos: Record<number, number> = {}
  for (const id of tokenizer.eosTokenIds) if (id < vocabulary) noEos[id] = -100
  const hello = tokenizer.encode('Hello', { addSpecialTokens: false })
  const prompt =
    tokenizer.bosTokenId !== undefined && tokenizer.bosTokenId < vocabulary
      ? [tokenizer.bosTokenId]
      : hello.length > 0 && hello.every((id) => id < vocabulary)
        ? hello
        : [0, 1, 2, 3].map((id) => id % vocabulary)
  try {
    let finish: FinishPart | undefined
    for await (const part of generate(session, tokenizer, {
      promptTokenIds: prompt,
      sampling: { temperature: 0, logitBias: noEos },
      maxTokens: tokens,
      ...(options.signal ? { signal: options.signal } : {}),
    })) {
      if (part.type === 'finish') finish = part
    }
    if (finish?.finishReason === 'abort') throw new AbortedError()
    const usage = finish?.usage
    return {
      tokensPerSecond: usage?.decodeTokensPerSecond ?? 0,
      decodeTokens: Math.max(0, (usage?.completionTokens ?? 0) - 1),
      prefillMs:
        usage && usage.prefillTokensPerSecond > 0 ? (prompt.length * 1000) / usage.prefillTokensPerSecond : 0,
      backend: session.info.backend,
    }
  } finally {
    await session.reset()
  }
}
