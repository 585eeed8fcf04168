// The SDK inside a real Cloudflare Worker (workerd under `wrangler dev`, offline, 127.0.0.1):
// createClient edge-only streams from a real edge (the worker app on Node over HTTP), with the
// same answer the SDK gets in Node. Proves the SDK bundles and runs where there is no device.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { StreamPart } from '../core/stream-parts.ts'
import { startTestEdge, type TestEdge } from '../test/sdk/test-edge.ts'
import { type LocalServer, repositoryRoot, startWranglerDev } from '../tools/wrangler-dev.ts'
import { createClient } from './client.ts'

let edge: TestEdge
let worker: LocalServer
let directory: string

beforeAll(async () => {
  edge = await startTestEdge()
  directory = await mkdtemp(join(tmpdir(), 'ondevice-sdk-workerd-'))
  const configPath = join(directory, 'wrangler.json')
  await writeFile(
    configPath,
    JSON.stringify({
      name: 'ondevice-sdk-edge-only',
      main: join(repositoryRoot, 'test/sdk/workerd-edge-only.ts'),
      compatibility_date: '2025-09-01',
      vars: { EDGE_URL: edge.url },
    }),
  )
  worker = await startWranglerDev({ configPath, stateDir: join(directory, 'state'), timeoutMs: 90_000 })
}, 120_000)

afterAll(async () => {
  await worker?.stop()
  await edge?.close()
  if (directory) await rm(directory, { recursive: true, force: true })
})

it('createClient edge-only in workerd: route, text deltas and finish, the same answer as in Node', async () => {
  const response = await fetch(`${worker.url}/chat?q=Hello&max=8`)
  const body = (await response.json()) as { parts?: StreamPart[]; error?: string; status?: { route: string } }
  expect(body.error, worker.output()).toBeUndefined()
  const parts = body.parts ?? []
  expect(parts[0]).toMatchObject({ type: 'route', route: 'edge', reason: 'policy edge-only' })
  const finish = parts.at(-1)
  if (finish?.type !== 'finish') throw new Error(`no finish: ${JSON.stringify(parts)}`)
  expect(finish.usage).toMatchObject({ route: 'edge', completionTokens: 8 })
  const node = await createClient({ policy: 'edge-only', edge: { url: edge.url } }).chat({
    messages: [{ role: 'user', content: 'Hello' }],
    maxTokens: 8,
    seed: 1,
  })
  expect(finish.text).toBe(node.text)
  expect(body.status?.route).toBe('edge')
})
