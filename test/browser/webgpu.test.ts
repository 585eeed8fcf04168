// WebGPU and the runtime's conformance body in Chromium. With --enable-unsafe-webgpu and no GPU,
// Chromium gets SwiftShader's software adapter, so the demo's device answers on the webgpu
// backend (slowly: the answer is short), and the conformance cases run on webgpu and on wasm
// against Node's WASM results. One browser for the file.
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureDefaultPackage } from '../../builder/default-package.ts'
import { defaultCacheDir } from '../../client-runtime/store/node-store.ts'
import { maxAbsDifference } from '../conformance/conformance-cases.ts'
import { type LaunchedChromium, launchChromium } from './chromium.ts'
import { type ConformanceSite, runConformanceInPage, startConformanceSite } from './conformance.ts'
import { ask, describeFailure, openDemo } from './demo-page.ts'
import { type DemoSite, startDemoSite } from './demo-site.ts'
import { nodeReferenceAnswers, type ReferenceAnswer } from './node-reference.ts'

const resultsDirectory = fileURLToPath(new URL('../../test-results/browser/', import.meta.url))
const prompt = 'Hello'
const maxTokens = 2
// q4, the runtime's WebGPU format (checked here: q8 gives all-zero token ids on SwiftShader's WebGPU).
const dtype = 'q4'

let chromium: LaunchedChromium
let site: DemoSite
let reference: ReferenceAnswer
let conformance: ConformanceSite

beforeAll(async () => {
  const packageDirectory = await ensureDefaultPackage({ cacheDir: defaultCacheDir() })
  const [launched, started, answers, conformanceSite] = await Promise.all([
    launchChromium({ webgpu: true }),
    startDemoSite({ packageDirectory }),
    nodeReferenceAnswers(
      packageDirectory,
      dtype,
      [
        { messages: [{ role: 'user', content: prompt }], maxTokens, sampling: { temperature: 0 } },
        // WebGPU runs onnxruntime-web's graph: held to onnxruntime-web's WASM kernels, not the engine's.
      ],
      'ort-wasm',
    ),
    startConformanceSite(),
  ])
  chromium = launched
  site = started
  reference = answers[0] as ReferenceAnswer
  conformance = conformanceSite
}, 240_000)

afterAll(async () => {
  await chromium?.close()
  await site?.close()
  await conformance?.close()
})

describe('the demo page on WebGPU (SwiftShader)', () => {
  it('answers on the device with the webgpu backend, streaming, with the same greedy tokens as WASM', async () => {
    const context = await chromium.newContext()
    try {
      // Forced: the router leaves a software adapter (SwiftShader here) to an app that asks for it.
      const opened = await openDemo(context, site.url, {
        policy: 'device-only',
        dtype,
        maxTokens,
        backend: 'webgpu',
      })
      const adapter = await opened.page.evaluate(async () => {
        const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu
        return gpu === undefined
          ? 'no navigator.gpu'
          : (await gpu.requestAdapter()) === null
            ? 'no adapter'
            : 'adapter'
      })
      expect(adapter).toBe('adapter')
      const answer = await ask(opened.page, prompt, { timeoutMs: 280_000 })
      const failure = describeFailure(answer, opened.log)
      expect(answer.state, failure).toBe('done')
      expect(answer.route, failure).toBe('device')
      expect(answer.backend, failure).toBe('webgpu')
      expect(answer.badge).toBe('device · WebGPU')
      expect(answer.tokenIds, failure).toEqual(reference.tokenIds)
      expect(answer.snapshots, 'the answer should appear piece by piece').toBeGreaterThan(1)
      // A successful WebGPU load prints none of ONNX Runtime's warnings (e.g. "Some nodes were not
      // assigned to the preferred execution providers", at console.error level) in the page or
      // the worker: the runtime sets ORT's log level to errors.
      expect(opened.log.filter((line) => /onnxruntime|\[W:/.test(line))).toEqual([])
      await opened.page.screenshot({ path: `${resultsDirectory}demo-webgpu.png`, fullPage: true })
    } finally {
      await context.close()
    }
  }, 300_000)
})

describe('a software WebGPU adapter is not chosen unasked', () => {
  it('SwiftShader: the router runs the engine instead and says why', async () => {
    const context = await chromium.newContext()
    try {
      const opened = await openDemo(context, site.url, { policy: 'device-only', maxTokens })
      const answer = await ask(opened.page, prompt, { timeoutMs: 120_000 })
      const failure = describeFailure(answer, opened.log)
      expect(answer.state, failure).toBe('done')
      expect(answer.backend, failure).toBe('wasm')
      expect(answer.reason, failure).toMatch(/WebGPU only through a software renderer \(swiftshader\)/i)
    } finally {
      await context.close()
    }
  }, 180_000)
})

describe('the backend conformance body in Chromium', () => {
  // Issue 14's promise: the engine gives the same bits in Chromium as in Node (and so as the
  // workerd edge), which is what lets a sampled answer hand off mid-way and continue exactly.
  it("wasm (ondevice's engine): the same greedy tokens and logits, bit for bit, as the engine in Node", async () => {
    const context = await chromium.newContext()
    try {
      const outcomes = await runConformanceInPage(await context.newPage(), conformance, 'wasm')
      let compared = 0
      for (const outcome of outcomes) {
        const label = `wasm ${outcome.fixture}: ${outcome.name}`
        expect(outcome.error, label).toBeUndefined()
        const node = conformance.nodeEngineResults.get(`${outcome.fixture}/${outcome.name}`)
        if (node?.greedyTokens !== undefined)
          expect(outcome.result?.greedyTokens, label).toEqual(node.greedyTokens)
        if (node?.promptLogitsHead !== undefined) {
          expect(outcome.result?.promptLogitsHead, label).toEqual(node.promptLogitsHead)
          compared += 1
        }
      }
      expect(compared).toBeGreaterThan(0)
      // The check can tell the two kernels apart: onnxruntime-web's logits differ in the last bits.
      const differs = [...conformance.nodeEngineResults].some(
        ([key, engine]) =>
          engine.promptLogitsHead !== undefined &&
          JSON.stringify(engine.promptLogitsHead) !==
            JSON.stringify(conformance.nodeResults.get(key)?.promptLogitsHead),
      )
      expect(differs).toBe(true)
    } finally {
      await context.close()
    }
  }, 120_000)

  for (const [backend, tolerance] of [
    ['wasm', 1e-4],
    ['webgpu', 1e-3],
  ] as const) {
    it(`passes every case on ${backend}, with Node WASM's greedy tokens and logits within ${tolerance}`, async () => {
      const context = await chromium.newContext()
      try {
        const outcomes = await runConformanceInPage(await context.newPage(), conformance, backend)
        expect(outcomes.length).toBe(conformance.nodeResults.size)
        for (const outcome of outcomes) {
          const label = `${backend} ${outcome.fixture}: ${outcome.name}`
          expect(outcome.error, label).toBeUndefined()
          const node = conformance.nodeResults.get(`${outcome.fixture}/${outcome.name}`)
          if (node?.greedyTokens !== undefined)
            expect(outcome.result?.greedyTokens, label).toEqual(node.greedyTokens)
          if (node?.promptLogitsHead !== undefined) {
            const head = outcome.result?.promptLogitsHead ?? []
            expect(head.length, label).toBe(node.promptLogitsHead.length)
            // Relative to the logits' size: GPU float32 kernels round differently from the CPU's
            // (measured: 1.3e-3 absolute on the llama fixture, whose logits reach several units).
            const scale = Math.max(1, ...node.promptLogitsHead.map(Math.abs))
            expect(maxAbsDifference(node.promptLogitsHead, head) / scale, label).toBeLessThan(tolerance)
          }
        }
      } finally {
        await context.close()
      }
    }, 240_000)
  }
})
