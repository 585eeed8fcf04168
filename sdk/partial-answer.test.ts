// chat() rejecting after part of the answer was produced: the error carries that part
// (`partialAnswer`: exactly what stream() showed before its error part, or before an abort's
// finish), so a chat app keeps the text it had instead of losing it with the error. The embedded
// default package on the device (device-only: no edge to hand off to), its session failing at a
// decode step as a backend would (or the caller aborting there).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateText } from 'ai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureDefaultPackage } from '../builder/default-package.ts'
import { createRuntimeDeviceHost } from '../client-runtime/device-host/index.ts'
import { createNodeStore } from '../client-runtime/store/node-store.ts'
import { AbortedError, BackendError, OndeviceError } from '../core/errors.ts'
import type { StreamPart } from '../core/stream-parts.ts'
import { isDecodeStep, watchAppends } from '../test/support/watch-appends.ts'
import { createOndevice } from './ai-sdk/index.ts'
import { createClient } from './client.ts'

let workDir: string
let packageDir: string
/** Called before each decode step the device's session is fed (its index from 1). */
let onDecodeStep: ((step: number) => void) | undefined
/** Called before each prompt chunk the device's session is fed. */
let onPrefill: (() => void) | undefined

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ondevice-partial-answer-'))
  packageDir = await ensureDefaultPackage({ cacheDir: join(workDir, 'package') })
}, 120_000)

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true })
})

function deviceClient() {
  let step = 0
  return createClient(
    { model: packageDir, policy: 'device-only', thresholds: { minDeviceTokensPerSecond: 0.1 } },
    {
      deviceHost: createRuntimeDeviceHost({
        store: createNodeStore({ cacheDir: join(workDir, 'cache') }),
        wrapSession: (session) =>
          watchAppends(session, (tokenIds, options) => {
            if (!isDecodeStep(tokenIds, options)) return onPrefill?.()
            step++
            onDecodeStep?.(step)
          }),
      }),
    },
  )
}

const request = {
  messages: [{ role: 'user' as const, content: 'Tell me a long story.' }],
  temperature: 0,
  maxTokens: 40,
}

/** What stream() showed before it ended: the deltas' text and token ids. */
function shown(parts: readonly StreamPart[]) {
  const deltas = parts.flatMap((part) => (part.type === 'text-delta' ? [part] : []))
  return { text: deltas.map((part) => part.text).join(''), tokenIds: deltas.flatMap((part) => part.tokenIds) }
}

describe('chat() rejecting mid-answer carries the answer so far', () => {
  it('a device failing mid-answer (device-only): the error has partialAnswer, what stream() showed before its error', async () => {
    const client = deviceClient()
    try {
      await client.prepare() // the probe's decode steps are not counted below
      const failAt = (step: number) => {
        if (step === 12) throw new BackendError('backend_failed', 'The device lost its GPU (test).')
      }
      const steps = () => {
        let step = 0
        onDecodeStep = () => failAt(++step)
      }
      steps()
      const parts: StreamPart[] = []
      for await (const part of client.stream(request)) parts.push(part)
      expect(parts.at(-1)?.type).toBe('error')
      const before = shown(parts)
      expect(before.text).not.toBe('')

      // The failed model was dropped: loaded (and probed) again before the next failure is armed.
      onDecodeStep = undefined
      await client.prepare()
      steps()
      const error = await client.chat(request).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(OndeviceError)
      expect((error as OndeviceError).message).toMatch(/lost its GPU/)
      expect((error as OndeviceError).partialAnswer).toEqual({
        text: before.text,
        tokenIds: before.tokenIds,
      })
      // It survives the error's JSON form (a Web Worker, a server's log).
      expect(JSON.parse(JSON.stringify(error)).partialAnswer).toEqual({
        text: before.text,
        tokenIds: before.tokenIds,
      })
    } finally {
      onDecodeStep = undefined
      await client.dispose()
    }
  }, 120_000)

  it("the AI SDK provider's generateText rejects with the same partialAnswer as chat()", async () => {
    // ondevice/ai-sdk's doGenerate read the same stream as chat() but threw its error part bare:
    // generateText lost the text that chat() keeps on the error.
    const client = deviceClient()
    try {
      await client.prepare()
      const arm = () => {
        let step = 0
        onDecodeStep = () => {
          if (++step === 12) throw new BackendError('backend_failed', 'The device lost its GPU (test).')
        }
      }
      arm()
      const fromChat = await client.chat(request).then(
        () => undefined,
        (caught: unknown) => caught as OndeviceError,
      )
      expect(fromChat?.partialAnswer?.text).toBeTruthy()
      onDecodeStep = undefined
      await client.prepare()
      arm()
      const ondevice = createOndevice({ client })
      const fromGenerateText = await generateText({
        model: ondevice(),
        messages: request.messages,
        temperature: request.temperature,
        maxOutputTokens: request.maxTokens,
        maxRetries: 0,
      }).then(
        () => undefined,
        (caught: unknown) => caught as OndeviceError,
      )
      expect(fromGenerateText).toBeInstanceOf(BackendError)
      expect(fromGenerateText?.partialAnswer).toEqual(fromChat?.partialAnswer)
    } finally {
      onDecodeStep = undefined
      await client.dispose()
    }
  }, 120_000)

  it('aborted mid-answer: the AbortedError has partialAnswer, what the aborted finish counts', async () => {
    const client = deviceClient()
    try {
      await client.prepare()
      const abortAt = (controller: AbortController) => {
        let step = 0
        onDecodeStep = () => {
          if (++step === 12) controller.abort()
        }
      }
      const whole = await client.chat(request)
      const chatted = new AbortController()
      abortAt(chatted)
      const error = await client.chat({ ...request, signal: chatted.signal }).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(AbortedError)
      // What the aborted finish counts (how many tokens got out before the abort depends on the
      // moment): a start of the uninterrupted answer, text and ids alike.
      const partial = (error as AbortedError).partialAnswer
      expect(partial?.tokenIds.length).toBeGreaterThan(0)
      expect(partial?.tokenIds).toEqual(whole.tokenIds.slice(0, partial?.tokenIds.length))
      expect(whole.text.startsWith(partial?.text ?? '<none>')).toBe(true)
    } finally {
      onDecodeStep = undefined
      await client.dispose()
    }
  }, 120_000)

  it('an error before any token (in the prefill): no partialAnswer', async () => {
    const client = deviceClient()
    try {
      await client.prepare()
      onPrefill = () => {
        throw new BackendError('backend_failed', 'The device lost its GPU (test).')
      }
      const error = await client.chat(request).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(OndeviceError)
      expect((error as OndeviceError).message).toMatch(/lost its GPU/)
      expect((error as OndeviceError).partialAnswer).toBeUndefined()
    } finally {
      onPrefill = undefined
      await client.dispose()
    }
  }, 120_000)
})
