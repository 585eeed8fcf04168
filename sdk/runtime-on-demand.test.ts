// `ondevice`'s createRuntimeDeviceHost and createDeviceModel load the runtime on first use
// (runtime-on-demand.ts, so a page's bundle never loads it up front): what they give must be what
// the runtime's own (ondevice/runtime) give, fields at once, answers, errors and turns included.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureDefaultPackage } from '../builder/default-package.ts'
import * as runtime from '../client-runtime/device-host/index.ts'
import type { DeviceModel } from '../client-runtime/device-host/types.ts'
import { createNodeStore } from '../client-runtime/store/node-store.ts'
import { qwen3Tokenizer } from '../test/support/qwen3-tokenizer.ts'
import { createTestSession } from '../test/support/test-session.ts'
import * as sdk from './index.ts'

const messages = [{ role: 'user' as const, content: 'Hi' }]

async function answer(model: DeviceModel, maxTokens = 6): Promise<unknown[]> {
  const parts: unknown[] = []
  for await (const part of model.generate({ messages, maxTokens, sampling: { temperature: 0 } })) {
    // Timings differ from run to run; the tokens, the text and the counts do not.
    if (part.type !== 'finish') parts.push(part)
    else {
      const { promptTokens, completionTokens } = part.usage
      parts.push({ type: 'finish', finishReason: part.finishReason, promptTokens, completionTokens })
    }
  }
  return parts
}

const parts = () => ({
  session: createTestSession({ vocabularySize: qwen3Tokenizer().vocabularySize, modelId: 'on-demand' }),
  tokenizer: qwen3Tokenizer(),
  warnings: ['a warning the load gave'],
})

describe("ondevice's createDeviceModel", () => {
  it("has the fields at once, answers as the runtime's does, and takes turns on its session", async () => {
    const own = runtime.createDeviceModel(parts())
    const onDemand = sdk.createDeviceModel(parts())
    const fields = (model: DeviceModel) => ({
      modelId: model.modelId,
      backend: model.backend,
      dtype: model.dtype,
      warnings: model.warnings,
      toolCallSyntax: model.toolCallSyntax,
    })
    expect(fields(onDemand)).toEqual(fields(own))
    expect(fields(onDemand)).toMatchObject({ modelId: 'on-demand', toolCallSyntax: 'json' })
    const expected = await answer(own)
    expect(expected.at(-1)).toMatchObject({ type: 'finish', finishReason: 'length' })
    // Two at once on one model: one session, one queue (the second waits, both answer whole).
    const [first, second] = await Promise.all([answer(onDemand), answer(onDemand)])
    expect(first).toEqual(expected)
    expect(second).toEqual(expected)
    // Errors keep their class, code and param.
    const tooLong = onDemand.generate({ messages, maxTokens: 1_000_000 })
    await expect(
      (async () => {
        for await (const _ of tooLong);
      })(),
    ).rejects.toMatchObject({ name: 'ContextLengthError', param: 'maxTokens' })
    expect(await onDemand.probe()).toBeGreaterThan(0)
    await onDemand.dispose()
    await own.dispose()
  })
})

describe("ondevice's createRuntimeDeviceHost", () => {
  let cacheDir: string
  let packageDir: string

  beforeAll(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'ondevice-on-demand-'))
    packageDir = await ensureDefaultPackage({ cacheDir })
  })
  afterAll(async () => {
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true })
  })

  it("inspects, loads and answers as the runtime's own, and refuses what it refuses", async () => {
    const own = runtime.createRuntimeDeviceHost({ store: createNodeStore({ cacheDir }) })
    const onDemand = sdk.createRuntimeDeviceHost({ store: createNodeStore({ cacheDir }) })
    expect((await onDemand.capabilities()).host).toBe((await own.capabilities()).host)
    expect(await onDemand.inspect(packageDir, { backend: 'wasm' })).toEqual(
      await own.inspect(packageDir, { backend: 'wasm' }),
    )
    const ownModel = await own.load(packageDir, { backend: 'wasm' })
    const expected = await answer(ownModel, 4)
    await ownModel.dispose()
    const model = await onDemand.load(packageDir, { backend: 'wasm' })
    expect(model.backend).toBe('wasm')
    expect(await answer(model, 4)).toEqual(expected)
    await model.dispose()
    // No model and no defaultModel: the runtime's own InvalidArgumentError, from the first call.
    await expect(onDemand.load(undefined, {})).rejects.toMatchObject({
      name: 'InvalidArgumentError',
      param: 'model',
    })
  })
})
