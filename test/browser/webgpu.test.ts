// The demo page on WebGPU: Chromium with --enable-unsafe-webgpu and no GPU gets SwiftShader's
// software adapter, so the device answers on the webgpu backend. SwiftShader is slow, so the
// answer is short. One browser for the file.
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { defaultModelPackage } from '../../client-runtime/index.ts'
import { type LaunchedChromium, launchChromium } from './chromium.ts'
import { ask, describeFailure, openDemo } from './demo-page.ts'
import { type DemoSite, startDemoSite } from './demo-site.ts'
import { nodeReferenceAnswers, type ReferenceAnswer } from './node-reference.ts'

const resultsDirectory = fileURLToPath(new URL('../../test-results/browser/', import.meta.url))
const prompt = 'Hello'
const maxTokens = 2
// fp32: the q4 weights give wrong logits on SwiftShader's WebGPU today (see the runtime issue).
const dtype = 'fp32'

let chromium: LaunchedChromium
let site: DemoSite
let reference: ReferenceAnswer

beforeAll(async () => {
  const packageDirectory = await defaultModelPackage()
  const [launched, started, answers] = await Promise.all([
    launchChromium({ webgpu: true }),
    startDemoSite({ packageDirectory }),
    nodeReferenceAnswers(packageDirectory, dtype, [
      { messages: [{ role: 'user', content: prompt }], maxTokens, sampling: { temperature: 0 } },
    ]),
  ])
  chromium = launched
  site = started
  reference = answers[0] as ReferenceAnswer
}, 240_000)

afterAll(async () => {
  await chromium?.close()
  await site?.close()
})

describe('the demo page on WebGPU (SwiftShader)', () => {
  it('answers on the device with the webgpu backend, streaming, with the same greedy tokens as WASM', async () => {
    const context = await chromium.newContext()
    try {
      const opened = await openDemo(context, site.url, { policy: 'device-only', dtype, maxTokens })
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
      await opened.page.screenshot({ path: `${resultsDirectory}demo-webgpu.png`, fullPage: true })
    } finally {
      await context.close()
    }
  }, 300_000)
})
