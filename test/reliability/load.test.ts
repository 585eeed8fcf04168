// Load against `ondevice serve` (the real CLI, a real ONNX model on onnxruntime-node): 32
// concurrent streaming clients for a bounded time, a third of them hanging up mid-stream. Every
// finished answer must equal the single-client answer for its seed, the concurrency cap must answer
// 429 with Retry-After instead of queueing without bound, no generation may stay active or queued
// afterwards, and resident memory is reported before and after. RELIABILITY_LOAD_SECONDS (default
// 15) sets the duration; `npm run soak` runs it for ten minutes. A watchdog thread asks /healthz
// every 100 ms meanwhile: every answer must come within a second.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { type Answer, referenceAnswer, residentMiB, runLoad } from './load-client.ts'
import { reportFigures } from './summary.ts'
import { healthzBoundEnforced, startHealthWatchdog } from './watchdog.ts'

const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url))
const seconds = Number(process.env.RELIABILITY_LOAD_SECONDS ?? 15)
const apiKey = 'load-test-key-0123456789abcdef'
const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }
// Two generations at once (CI has two cores), six more may wait up to 8 s; the rest get 429.
const limits = { MAX_CONCURRENT: '2', MAX_QUEUE: '6', QUEUE_TIMEOUT_MS: '8000', MAX_TOKENS: '64' }
let folder: string
let child: ChildProcess | undefined
let url = ''
let output = ''

async function health(): Promise<{
  generations: { active: number; queued: number; max_concurrent: number }
}> {
  return (await (await fetch(`${url}/healthz`)).json()) as {
    generations: { active: number; queued: number; max_concurrent: number }
  }
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-load-'))
  const packageDir = join(folder, 'package')
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: 'q8', seed: 9 })
  child = spawn(
    process.execPath,
    [
      join(repositoryRoot, 'cli/main.ts'),
      'serve',
      '--model',
      packageDir,
      '--model-id',
      'fixture',
      '--port',
      '0',
    ],
    {
      cwd: repositoryRoot,
      env: { ...process.env, API_KEYS: apiKey, ...limits },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  child.stderr?.on('data', (data: Buffer) => (output += data.toString()))
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ondevice serve did not start:\n${output}`)), 90_000)
    child!.stdout?.on('data', (data: Buffer) => {
      output += data.toString()
      const match = /Listening on (http:\/\/\S+)/.exec(output)
      if (match) {
        clearTimeout(timer)
        resolve(match[1]!)
      }
    })
    child!.once('exit', (code) => reject(new Error(`ondevice serve exited with ${code}:\n${output}`)))
  })
}, 180_000)

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child!.once('exit', resolve))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child?.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
  if (folder) await rm(folder, { recursive: true, force: true })
})

describe('load on ondevice serve', () => {
  it(
    `32 streaming clients for ${seconds} s, a third hanging up: answers equal the single-client ones, 429 + Retry-After at the cap, nothing leaked`,
    async () => {
      const seeds = 8
      const maxTokens = 8
      const references = new Map<number, Answer>()
      for (let seed = 0; seed < seeds; seed++)
        references.set(seed, await referenceAnswer({ url, headers, model: 'fixture', maxTokens }, seed))
      const rssBefore = await residentMiB(child!.pid!)
      // While the load runs, /healthz must keep answering within a second (nothing holds the loop).
      const watchdog = startHealthWatchdog(url, { pid: child!.pid! })
      const report = await runLoad({
        url,
        headers,
        model: 'fixture',
        clients: 32,
        seconds,
        seeds,
        maxTokens,
        disconnectEvery: 3,
        references,
        requestDeadlineMs: 30_000,
      })
      const healthz = await watchdog.stop()
      const bound = healthzBoundEnforced()
      // Let the aborted generations wind down, then nothing may hold a slot or wait for one.
      let after = await health()
      for (
        let wait = 0;
        wait < 50 && (after.generations.active > 0 || after.generations.queued > 0);
        wait++
      ) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        after = await health()
      }
      const rssAfter = await residentMiB(child!.pid!)
      // And the server still answers exactly as before.
      const again = await referenceAnswer({ url, headers, model: 'fixture', maxTokens }, 3)
      reportFigures('load-serve', {
        seconds,
        clients: 32,
        requests: report.started,
        completed: report.completed,
        disconnectedMidStream: report.disconnected,
        mismatched: report.mismatched.length,
        rejected429: report.rejected429,
        serverErrors: report.serverErrors.length,
        transportErrors: report.transportErrors.length,
        tokensStreamed: report.tokens,
        maxWaitForHeadersMs: report.maxQueueWaitMs,
        rssBeforeMiB: rssBefore ?? 'n/a',
        rssAfterMiB: rssAfter ?? 'n/a',
        activeAfter: after.generations.active,
        queuedAfter: after.generations.queued,
        healthzProbes: healthz.probes,
        healthzWorstMs: healthz.worstMs,
        healthzWorstExcessMs: healthz.worstExcessMs,
        healthzWorstWallExcessMs: healthz.worstWallExcessMs,
        healthzBound: bound.enforced ? 'enforced' : `reported only (load ${bound.load})`,
      })
      expect(report.serverErrors).toEqual([])
      expect(healthz.failures).toBe(0)
      if (bound.enforced) expect(healthz.worstExcessMs, JSON.stringify(healthz.slow)).toBeLessThan(1000)
      // A reset connection before any response is a transport hiccup (keep-alive race on a
      // loaded box), not an answer: tolerated, but only rarely.
      expect(report.transportErrors.length, report.transportErrors.join('\n')).toBeLessThanOrEqual(
        Math.max(3, report.started / 10),
      )
      expect(report.otherStatuses).toEqual([])
      expect(report.mismatched, output.slice(-2000)).toEqual([])
      expect(report.completed).toBeGreaterThan(3)
      expect(report.disconnected).toBeGreaterThan(0)
      // 32 clients against 2 slots + 6 queue places: the cap must have said no, with Retry-After.
      expect(report.rejected429).toBeGreaterThan(0)
      expect(report.retryAfterMissing).toBe(0)
      // Nobody waited for ever: the queue timeout (8 s) plus generous slack for a loaded box and
      // the on-demand creation of the second session.
      expect(report.maxQueueWaitMs).toBeLessThan(8_000 + 30_000)
      expect(after.generations).toMatchObject({ active: 0, queued: 0 })
      expect(again).toEqual(references.get(3))
      if (rssBefore !== undefined && rssAfter !== undefined)
        expect(rssAfter).toBeLessThan(rssBefore * 1.5 + 150)
    },
    seconds * 1000 + 120_000,
  )
})
