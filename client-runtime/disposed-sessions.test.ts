// A loaded model keeps every session it made listed until the model itself is disposed (so that
// dispose() reaches them all), so a disposed session must let go of what it held: an app that
// opens a session per conversation and disposes it must not grow by a cache (ONNX Runtime) or
// a logits vector (the engine) per conversation.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { loadModel } from './index.ts'
import { createNodeStore } from './store/node-store.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

let folder: string
let packageDir: string

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-disposed-sessions-'))
  packageDir = join(folder, 'qwen3')
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: ['q4'] })
}, 120_000)

afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true })
})

/** Bytes of ArrayBuffers alive after a full collection (tensors, logits, caches kept in JS). */
async function liveArrayBuffers(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().arrayBuffers
}

it.each(['wasm', 'native'] as const)(
  '%s: thirty sessions made, used and disposed leave no memory behind while the model stays loaded',
  async (backend) => {
    const model = await loadModel({
      model: packageDir,
      backend,
      dtype: 'q4',
      store: createNodeStore({ cacheDir: join(folder, 'cache'), onWarning: () => undefined }),
    })
    try {
      const ids = Array.from({ length: 600 }, (_, i) => (i * 37 + 11) % 5000)
      const conversation = async () => {
        const session = await model.createSession()
        await session.append(ids)
        await session.append([7])
        await session.dispose()
      }
      await conversation()
      const before = await liveArrayBuffers()
      for (let i = 0; i < 30; i++) await conversation()
      const grown = (await liveArrayBuffers()) - before
      // Kept, each would hold its 600-token cache (~0.6 MiB on ONNX Runtime) or its last logits
      // (151,936 floats, ~0.6 MiB, on the engine): ~18 MiB in all.
      expect(grown).toBeLessThan(6 * 1024 ** 2)
    } finally {
      await model.dispose()
    }
  },
  120_000,
)
