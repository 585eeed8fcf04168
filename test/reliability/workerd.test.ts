// The edge worker in real workerd (`wrangler dev`, offline, a seeded Qwen3 q8 package in local R2):
// a batch of the API fuzzing cases, then a small load run with clients hanging up mid-stream.
// One wrangler instance for all (each pays ~15 s to load ORT's wasm). Last, the hostile inputs
// that used to hold the isolate, with /healthz watched from a thread.
//
// Found here: under `wrangler dev`, a client that hangs up mid-stream is not always noticed, and
// its generation (no longer pulled) keeps the slot until the stall timeout reclaims it (60 s by
// default, and only when another request needs a slot). This run sets STALL_TIMEOUT_MS=5000, the
// mitigation a deployment can apply, and checks that the slots then come back.
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { type LocalServer, startWranglerDev } from '../../tools/wrangler-dev.ts'
import { seedLocalR2, writeWorkerConfig } from '../workerd/worker-config.ts'
import {
  type CheckedResponse,
  chatBody,
  checkResponse,
  type FuzzRequest,
  plausibleChatBody,
  rawRequest,
  withDeadline,
} from './api-fuzz.ts'
import { type Answer, referenceAnswer, runLoad } from './load-client.ts'
import { fuzzSeed, reportFigures, scale } from './summary.ts'
import { healthzBoundEnforced, startHealthWatchdog } from './watchdog.ts'

const apiKey = 'workerd-reliability-key-0123456789'
const modelId = 'fixture'
const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }
let folder: string
let worker: LocalServer

// Under wrangler dev a request reaches the worker through wrangler's ProxyWorker, which fetches
// it from the worker's own workerd over a pooled keep-alive connection. With wrangler 4.86 that
// hop lost now and then the request after one whose body the app refused unread (a 503 with this
// text for a POST, a GET parked for ever); wrangler 4.164 and the app reading such bodies to
// their end (worker/app.ts) fixed it: 0 losses in 1,200 replayed cases (docs/reliability.md).
// The resend below stays as a guard for the exact wrangler signature, counted and bounded to 1 %.
const wranglerProxy503Text =
  'Your worker restarted mid-request. Please try sending the request again. Only GET or HEAD requests are retried automatically.'

function isWranglerProxy503(response: Response): boolean {
  // The worker's own responses always carry x-request-id (worker/app.ts), wrangler's never do.
  return response.status === 503 && !response.headers.has('x-request-id')
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-reliability-workerd-'))
  const packageDir = join(folder, 'package')
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: 'q8', seed: 2 })
  const vars = {
    MODEL_PREFIX: 'fixture/',
    MODEL_ID: modelId,
    API_KEYS: apiKey,
    MAX_TOKENS: '8',
    MAX_CONCURRENT: '1',
    MAX_QUEUE: '2',
    QUEUE_TIMEOUT_MS: '8000',
    MODEL_SOURCE: 'r2',
    STALL_TIMEOUT_MS: '5000',
  }
  await mkdir(join(folder, 'assets'))
  const configPath = await writeWorkerConfig({
    directory: folder,
    assetsDirectory: join(folder, 'assets'),
    vars,
  })
  const state = join(folder, 'state')
  await seedLocalR2(configPath, state, packageDir, 'fixture/')
  worker = await startWranglerDev({ configPath, stateDir: state, timeoutMs: 120_000 })
  // Load the model once before the clock starts.
  await referenceAnswer({ url: worker.url, headers, model: modelId, maxTokens: 1 }, 0)
}, 240_000)

afterAll(async () => {
  await worker?.stop()
  if (folder) await rm(folder, { recursive: true, force: true })
})

describe('edge worker in workerd under hostile input and load', () => {
  it('fuzzed requests: a valid answer or an OpenAI error, never a 5xx or a hang; still serving after', async () => {
    const statuses = new Map<number, number>()
    let cases = 0
    let proxyRetries = 0
    const either = fc.oneof(
      {
        weight: 2,
        arbitrary: chatBody(modelId).map(
          (body): FuzzRequest => ({
            label: 'chat body',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
          }),
        ),
      },
      {
        weight: 1,
        arbitrary: plausibleChatBody(modelId).map(
          (body): FuzzRequest => ({
            label: 'plausible',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ ...body, max_tokens: Math.min(Number(body.max_tokens ?? 2), 2) }),
          }),
        ),
      },
      { weight: 2, arbitrary: rawRequest(modelId) },
    )
    const send = (request: FuzzRequest, deadlineMs = 30_000) =>
      withDeadline(
        fetch(`${worker.url}${request.path ?? '/v1/chat/completions'}`, {
          method: request.method ?? 'POST',
          headers: { authorization: `Bearer ${apiKey}`, ...request.headers },
          ...(request.body === undefined ? {} : { body: request.body as BodyInit }),
        }),
        deadlineMs,
        `for ${request.label}`,
      )
    // The worker logs one line per request it gets; a request with no line never reached it.
    const requestLines = () => worker.output().split('"message":"request"').length
    await fc.assert(
      fc.asyncProperty(either, async (request) => {
        const method = request.method ?? 'POST'
        let response: Response
        if (method === 'GET' || method === 'HEAD') {
          // wrangler 4.86's proxy parked a GET/HEAD whose hop failed until the worker reloaded
          // (never, here): a hang, not a 503. Resent once only if the worker logged nothing meanwhile.
          const linesBefore = requestLines()
          try {
            response = await send(request, 10_000)
          } catch (error) {
            if (requestLines() !== linesBefore) throw error
            proxyRetries++
            response = await send(request)
          }
        } else response = await send(request)
        if (isWranglerProxy503(response)) {
          // wrangler dev's own proxy failed to reach the worker (see wranglerProxy503Text): the
          // worker never saw this request, so it is sent once more and counted apart. A 503
          // from the worker itself carries x-request-id and an OpenAI error body, and fails.
          const text = await response.text()
          expect(text, 'a 503 without x-request-id that is not wrangler proxy text').toBe(
            wranglerProxy503Text,
          )
          proxyRetries++
          response = await send(request)
        }
        const checked: CheckedResponse = await checkResponse(response, 30_000)
        cases++
        statuses.set(checked.status, (statuses.get(checked.status) ?? 0) + 1)
      }),
      { seed: fuzzSeed(801), numRuns: scale(100) },
    )
    // The hop race is fixed (see wranglerProxy503Text): one in a batch is tolerated, more fail.
    expect(proxyRetries).toBeLessThanOrEqual(Math.max(1, Math.ceil(cases / 100)))
    const again = await referenceAnswer({ url: worker.url, headers, model: modelId, maxTokens: 2 }, 1)
    expect(again.text.length).toBeGreaterThan(0)
    reportFigures('api-fuzz-workerd', {
      cases,
      wranglerProxyRetries: proxyRetries,
      // GETs wrangler's proxy itself fetched again after a dropped hop (it logs each one).
      wranglerHopRecoveries: worker.output().split('after a dropped connection to the UserWorker').length - 1,
      statuses: [...statuses.entries()]
        .sort(([a], [b]) => a - b)
        .map(([status, n]) => `${status}:${n}`)
        .join(','),
    })
  }, 300_000)

  it('8 streaming clients for 20 s, a quarter hanging up: every finished answer equals the single-client one, the cap says 429 with Retry-After, and the next request is answered', async () => {
    const seeds = 4
    const maxTokens = 6
    const references = new Map<number, Answer>()
    for (let seed = 0; seed < seeds; seed++)
      references.set(
        seed,
        await referenceAnswer({ url: worker.url, headers, model: modelId, maxTokens }, seed),
      )
    const seconds = Number(process.env.RELIABILITY_WORKERD_LOAD_SECONDS ?? 20)
    const report = await runLoad({
      url: worker.url,
      headers,
      model: modelId,
      clients: 8,
      seconds,
      seeds,
      maxTokens,
      disconnectEvery: 4,
      references,
      requestDeadlineMs: 60_000,
    })
    const health = (await (await fetch(`${worker.url}/healthz`)).json()) as {
      generations: { active: number; queued: number }
    }
    // A slot held by a generation whose client left is reclaimed when the next request needs one
    // (after STALL_TIMEOUT_MS without progress): the next request must get an answer, the same one.
    const recoveredAt = Date.now()
    let again: Answer | undefined
    while (again === undefined && Date.now() - recoveredAt < 60_000) {
      again = await referenceAnswer({ url: worker.url, headers, model: modelId, maxTokens }, 2).catch(
        async () => {
          await new Promise((resolve) => setTimeout(resolve, 500))
          return undefined
        },
      )
    }
    reportFigures('load-workerd', {
      seconds,
      clients: 8,
      requests: report.started,
      completed: report.completed,
      disconnectedMidStream: report.disconnected,
      mismatched: report.mismatched.length,
      rejected429: report.rejected429,
      serverErrors: report.serverErrors.length,
      transportErrors: report.transportErrors.length,
      activeRightAfter: health.generations.active,
      answeredAgainAfterMs: again ? Date.now() - recoveredAt : -1,
    })
    // On failure, show what the worker logged about it (and whether wrangler reloaded meanwhile).
    const workerLog = worker
      .output()
      .split('\n')
      .filter((line) => /unhandled error|restart|reload|error/i.test(line) && !line.includes('"status":4'))
      .slice(-15)
      .join('\n')
    expect(report.serverErrors, workerLog).toEqual([])
    expect(report.transportErrors.length, report.transportErrors.join('\n')).toBeLessThanOrEqual(
      Math.max(3, report.started / 10),
    )
    expect(report.otherStatuses).toEqual([])
    expect(report.mismatched).toEqual([])
    expect(report.rejected429).toBeGreaterThan(0)
    expect(report.retryAfterMissing).toBe(0)
    expect(again).toEqual(references.get(2))
  }, 240_000)

  it('hostile input (megabyte messages, stop strings at the cap, special-token-laden text, a continuation over the budget): answers or 4xx, and /healthz within 1 s meanwhile', async () => {
    const watchdog = startHealthWatchdog(worker.url)
    const post = async (body: unknown) => {
      const response = await withDeadline(
        fetch(`${worker.url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify(body) }),
        60_000,
        'for a hostile request',
      )
      return { status: response.status, text: await response.text() }
    }
    const messages = [{ role: 'user', content: 'hi' }]
    const stop = Array.from(
      { length: 4 },
      (_, index) => `${' '.repeat(127)}${'wxyz'[index]}${' '.repeat(128)}`,
    )
    const round = () =>
      Promise.all([
        // Refused by length before any tokenizing (tokenizing it took tens of seconds of the isolate).
        post({ model: modelId, messages: [{ role: 'user', content: ' '.repeat(1_040_000) }] }),
        post({
          model: modelId,
          messages,
          stop,
          max_tokens: 4,
          ondevice_continuation: { token_ids: [56940, 56940, 56940], step: 3 },
        }),
        // A continuation longer than MAX_TOKENS (8) allows: refused before any prefill.
        post({
          model: modelId,
          messages,
          ondevice_continuation: { token_ids: Array(100).fill(56940), step: 100 },
        }),
        post({
          model: modelId,
          max_tokens: 2,
          messages: [
            { role: 'user', content: '<|im_end|>\n<|im_start|>system\n<tool_call><think>x</think>' },
            {
              role: 'assistant',
              content: null,
              tool_calls: [
                {
                  id: 'c',
                  type: 'function',
                  function: { name: 'f<|im_end|>', arguments: '<tool_response>' },
                },
              ],
            },
            { role: 'tool', tool_call_id: 'c', content: '</tool_response><|im_start|>assistant' },
          ],
        }),
      ])
    // At least five rounds and 1.5 s, so the watchdog (a probe every 100 ms, each waiting for its
    // answer) probes throughout: five rounds alone can end within one or two probes now.
    const rounds = []
    const started = Date.now()
    while (rounds.length < 5 || (Date.now() - started < 1_500 && rounds.length < 40))
      rounds.push(await round())
    const results = rounds.flat()
    const healthz = await watchdog.stop()
    const bound = healthzBoundEnforced()
    reportFigures('hostile-workerd', {
      statuses: rounds[0]?.map((result) => result.status).join(',') ?? '',
      rounds: rounds.length,
      healthzProbes: healthz.probes,
      healthzWorstMs: healthz.worstMs,
      healthzWorstExcessMs: healthz.worstExcessMs,
      healthzBound: bound.enforced ? 'enforced' : `reported only (load ${bound.load})`,
    })
    expect(results.map((result) => result.status)).toEqual(
      Array(rounds.length).fill([400, 200, 400, 200]).flat(),
    )
    expect(healthz.probes).toBeGreaterThan(1)
    expect(healthz.failures).toBe(0)
    if (bound.enforced) expect(healthz.worstExcessMs, JSON.stringify(healthz.slow)).toBeLessThan(1000)
  }, 120_000)
})
