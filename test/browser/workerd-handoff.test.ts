// A handoff across the whole path an app meets: the page (the SDK with ondevice's WebAssembly
// engine in real Chromium, the package in OPFS) fails mid-answer at decode step k and the edge
// worker in real workerd (`wrangler dev`, offline, the shipped worker bundle serving the same
// package from static assets, ondevice's engine) continues from the tokens shown. The joined
// answer must be the uninterrupted device answer, token for token, with the same usage counts, at
// temperature 1 with a seed: the same logit bits in Chromium's engine (on two threads: the page is
// cross-origin isolated) and workerd's (one). For a Qwen3 and a Qwen3.5 package (q8, the
// 'think-open' template: the generation prompt opens `<think>`): a short prompt, a long one that
// both sides prefill in several passes, and a thinking answer.
// (test/browser/bad-connection.test.ts does the same against the edge app on Node.)
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import { build, defaultClientConditions } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { type LocalServer, startWranglerDev } from '../../tools/wrangler-dev.ts'
import { prepareAssetsPackage } from '../../worker/prepare-assets.ts'
import { qwen3Tokenizer } from '../support/qwen3-tokenizer.ts'
import { writeWorkerConfig } from '../workerd/worker-config.ts'
import type { ScenarioRequest, ScenarioResult } from './bad-connection-page/main.ts'
import { type LaunchedChromium, launchChromium } from './chromium.ts'

const arches = ['qwen3', 'qwen3_5'] as const
type Arch = (typeof arches)[number]

let folder: string
let pageDir: string
let packagesDir: string
let site: Server
let siteUrl: string
const workers = new Map<Arch, LocalServer>()
let chromium: LaunchedChromium
let page: Page

const types: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
}

async function handleSite(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://x')
  const path = url.pathname.startsWith('/pkg/')
    ? join(packagesDir, normalize(url.pathname.slice('/pkg/'.length)))
    : join(pageDir, normalize(url.pathname === '/' ? 'index.html' : url.pathname))
  const body = await readFile(path).catch(() => undefined)
  if (!body) {
    response.writeHead(404).end('not found')
    return
  }
  // Cross-origin isolated, as a page built with ondevice/vite is: the engine runs on threads here
  // (Chromium's), on one in workerd.
  response
    .writeHead(200, {
      'content-type': types[extname(path)] ?? 'application/octet-stream',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    })
    .end(body)
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-workerd-handoff-'))
  pageDir = join(folder, 'page')
  packagesDir = join(folder, 'packages')
  for (const arch of arches)
    await writeFixture({
      arch,
      outDir: join(packagesDir, arch),
      dtype: 'q8',
      seed: 5,
      chatTemplate: 'think-open',
    })
  site = createServer((request, response) => {
    handleSite(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500)
      response.end()
    })
  })
  await new Promise<void>((done) => site.listen(0, '127.0.0.1', done))
  siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`
  // One bundle of the worker, one workerd per package (each pays for compiling the engine), and
  // the page's build, all at once.
  const startWorkers = async () => {
    for (const arch of arches)
      await prepareAssetsPackage(join(packagesDir, arch), join(folder, 'assets', arch))
    const configPath = await writeWorkerConfig({
      directory: folder,
      assetsDirectory: join(folder, 'assets'),
      vars: { MODEL_SOURCE: 'assets', ALLOWED_ORIGINS: siteUrl, MAX_CONCURRENT: '1' },
    })
    return Promise.allSettled(
      arches.map(async (arch) => {
        await mkdir(join(folder, `state-${arch}`))
        const worker = await startWranglerDev({
          configPath,
          stateDir: join(folder, `state-${arch}`),
          vars: { MODEL_PREFIX: `${arch}/`, MODEL_ID: arch },
          timeoutMs: 120_000,
        })
        workers.set(arch, worker)
      }),
    )
  }
  const buildPage = () =>
    build({
      configFile: false,
      root: fileURLToPath(new URL('./bad-connection-page/', import.meta.url)),
      base: './',
      logLevel: 'error',
      publicDir: false,
      optimizeDeps: { exclude: ['onnxruntime-web'] },
      resolve: { conditions: ['ondevice-source', ...defaultClientConditions] },
      build: { outDir: pageDir, emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
    })
  const [started, built] = await Promise.allSettled([startWorkers(), buildPage()])
  if (started.status === 'rejected') throw started.reason
  const failed = started.value.find((result) => result.status === 'rejected')
  if (failed) throw failed.reason
  if (built.status === 'rejected') throw built.reason
  chromium = await launchChromium({ webgpu: false })
  page = await (await chromium.newContext()).newPage()
  await page.goto(`${siteUrl}/index.html`)
  await page.waitForFunction(() => 'runScenario' in globalThis)
  // Isolated, so the two threads asked for are two (else one, with a warning).
  expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true)
}, 240_000)

afterAll(async () => {
  await chromium?.close()
  await Promise.all([...workers.values()].map((worker) => worker.stop()))
  site?.closeAllConnections()
  await new Promise((done) => site?.close(done))
  if (folder) await rm(folder, { recursive: true, force: true })
})

function run(request: ScenarioRequest): Promise<ScenarioResult> {
  return page.evaluate(
    (scenario) =>
      (globalThis as unknown as { runScenario(r: ScenarioRequest): Promise<ScenarioResult> }).runScenario(
        scenario,
      ),
    request,
  )
}

const thinkingOff = { temperature: 1, seed: 21, enableThinking: false }
/** The engine's prefill pass, in tokens (docs/worker.md). */
const enginePass = 64
/** `</think>` in the Qwen3 tokenizer the fixtures carry. */
const closeThink = 151668
/** A seed whose thinking answer (`</think>` biased by 10) draws `</think>` at token closeAt. */
const thinking: Record<Arch, { seed: number; closeAt: number }> = {
  qwen3: { seed: 13, closeAt: 5 },
  qwen3_5: { seed: 1, closeAt: 6 },
}

describe.each(arches)('a handoff from the engine in Chromium to the engine in workerd (%s q8)', (arch) => {
  const model = `/pkg/${arch}/`
  // Two engine threads in the page (it is cross-origin isolated), one in workerd: the bits are
  // the same for any count, so the joined answer must be too.
  const threads = 2

  async function expectHandoffsJoin(
    prompt: string,
    maxTokens: number,
    ks: readonly number[],
    options: ScenarioRequest['options'] = thinkingOff,
  ): Promise<ScenarioResult> {
    const whole = await run({ model, threads, client: { policy: 'device-only' }, prompt, maxTokens, options })
    expect(whole.error).toBeUndefined()
    expect(whole.route).toBe('device')
    expect(whole.tokenIds).toHaveLength(maxTokens)
    const worker = workers.get(arch) as LocalServer
    const client = {
      edge: { url: worker.url, connectTimeoutMs: 10_000 },
      thresholds: { minDeviceTokensPerSecond: 0.01 },
    }
    for (const k of ks) {
      const handed = await run({ model, threads, client, prompt, maxTokens, options, failAtToken: k })
      expect(handed.error, `k=${k}: ${worker.output().slice(-2000)}`).toBeUndefined()
      // k = 0: the device fails in its prefill, before any token; the edge answers all of it.
      expect(handed.route, `k=${k}`).toBe(k === 0 ? 'edge' : 'device+edge')
      expect(
        handed.parts.filter((part) => part.type === 'handoff'),
        `k=${k}`,
      ).toHaveLength(k === 0 ? 0 : 1)
      expect(handed.tokenIds, `k=${k}`).toEqual(whole.tokenIds)
      expect(handed.text, `k=${k}`).toBe(whole.text)
      expect(handed.reasoning, `k=${k}`).toBe(whole.reasoning)
      expect(handed.usage, `k=${k}`).toEqual(whole.usage)
    }
    return whole
  }

  it('a short prompt, the device failing at k = 1, 4, 11: the joined answer is the uninterrupted one', async () => {
    await expectHandoffsJoin('Tell me about rivers and their bridges.', 14, [1, 4, 11])
  }, 120_000)

  it("a long prompt (several of the engine's 64-token prefill passes on each side), k = 0, 1, 9: the joined answer is the uninterrupted one", async () => {
    const prompt = `Here is a list of rivers and bridges: ${Array.from({ length: 14 }, (_, i) => `river ${i} has ${i * 3 + 1} bridges`).join(', ')}. Which has the most?`
    // The edge prefills the prompt in the engine's passes, then the k continuation tokens one by one.
    expect(qwen3Tokenizer().encodeChat([{ role: 'user', content: prompt }]).length).toBeGreaterThan(
      2 * enginePass,
    )
    await expectHandoffsJoin(prompt, 12, [0, 1, 9])
  }, 120_000)

  it('a thinking answer, k inside the reasoning, on the step that draws `</think>` and just after it: reasoning and reply joined exactly', async () => {
    // A random-weight model closes its reasoning only when pushed: `</think>` (one token) is
    // biased, alike on both sides; with this seed the uninterrupted answer draws it at closeAt
    // (checked below: the engine's numbers are the same in Node, where the seed was picked), so k
    // falls two tokens before it, on the step that draws it and just after it.
    const prompt = 'What is six times seven?'
    const { seed, closeAt } = thinking[arch]
    const options = { temperature: 1, seed, logitBias: { [closeThink]: 10 } }
    const whole = await expectHandoffsJoin(prompt, 12, [closeAt - 2, closeAt, closeAt + 1], options)
    expect(whole.tokenIds?.indexOf(closeThink)).toBe(closeAt)
    expect(whole.reasoning.length).toBeGreaterThan(0)
    expect(whole.text.length).toBeGreaterThan(0)
    expect(whole.usage?.reasoningTokens).toBe(closeAt + 1)
  }, 120_000)
})
