// The engine's prefill pass in a Workers isolate (real workerd, `wrangler dev`, offline): an
// isolate serves other requests at the engine's turns (health checks, other bodies, a client's
// abort), and a deployed isolate's clock stands still while code runs, so no turn inside a pass is
// due there: its first pass takes 64 tokens, and 128 only where the pass before shows one fits the
// budget (wasm/engine/models/pass-size.ts). workerd defines WorkerGlobalScope (and
// ServiceWorkerGlobalScope), which runsInWorker took for a worker with nothing else to do: every
// pass in an isolate took 128 tokens, holding it twice as long whatever the model's speed.
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type LocalServer, startWranglerDev } from '../../tools/wrangler-dev.ts'
import { BASE_PASS_TOKENS } from '../../wasm/engine/models/pass-size.ts'
import { writeWorkerConfig } from './worker-config.ts'

let folder: string
let worker: LocalServer

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-workerd-pass-size-'))
  await mkdir(join(folder, 'assets'))
  const configPath = await writeWorkerConfig({
    directory: folder,
    assetsDirectory: join(folder, 'assets'),
    entry: 'test/workerd/pass-size-entry.ts',
    vars: {},
  })
  worker = await startWranglerDev({ configPath, stateDir: join(folder, 'state') })
}, 180_000)

afterAll(async () => {
  await worker?.stop()
  if (folder) await rm(folder, { recursive: true, force: true })
})

it('a Workers isolate is not taken for a worker: its first prefill pass takes 64 tokens', async () => {
  const answer = (await (await fetch(`${worker.url}/pass-size`)).json()) as Record<string, unknown>
  // What misled the check: workerd has the global a browser's worker has.
  expect(answer.hasWorkerGlobalScope).toBe('function')
  expect(answer).toMatchObject({ runsInWorker: false, firstPass: BASE_PASS_TOKENS })
})
