// `ondevice serve` with several formats on a real package: each format's estimate (the package's
// estimatedMemory for its dtype and backend) counts against the server's memory budget, and a
// format that would take the loaded ones past it is not loaded: its request is refused with the
// reason, or answered in the default when it allows a fallback (never an out-of-memory kill).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { inspectPackage } from '../client-runtime/index.ts'
import { createNodeStore } from '../client-runtime/store/node-store.ts'
import { selectModel } from './model-host.ts'
import { createNodeModelHost } from './node.ts'

let directory: string
let packageDir: string

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ondevice-memory-budget-'))
  packageDir = join(directory, 'tiny')
  await writeFixture({ arch: 'qwen3_5', outDir: packageDir, dtype: ['q4', 'q8'] })
}, 60_000)

afterAll(async () => {
  if (directory) await rm(directory, { recursive: true, force: true })
})

describe('a Node model host with a memory budget', () => {
  it('loads formats while their estimates fit, and refuses or falls back past it', async () => {
    const store = createNodeStore()
    const estimate = async (dtype: string, backend: 'native' | 'wasm') =>
      (await inspectPackage({ model: packageDir, dtype, backend, store })).estimatedMemoryBytes as number
    const defaultBytes = await estimate('q4', 'native')
    const secondBytes = await estimate('q8', 'native')
    expect(defaultBytes).toBeGreaterThan(0)
    const host = createNodeModelHost({
      model: packageDir,
      formats: [
        { dtype: 'q4', backend: 'native' },
        { dtype: 'q8', backend: 'native' },
        { dtype: 'q8', backend: 'wasm' },
      ],
      memoryBudgetBytes: defaultBytes + secondBytes + 2 ** 20,
    })
    await host.load()
    expect((await selectModel(host, { dtype: 'q8', backend: 'native' })).model.info).toMatchObject({
      dtype: 'q8',
      backend: 'native',
    })
    await expect(selectModel(host, { dtype: 'q8', backend: 'wasm' })).rejects.toMatchObject({
      code: 'unsupported',
      param: 'ondevice_format',
      message: expect.stringMatching(
        /q8 on wasm is not loaded: it needs ~\d+ MiB next to the 2 loaded .*memory budget/,
      ),
    })
    const fellBack = await selectModel(host, { dtype: 'q8', backend: 'wasm', fallback: true })
    expect(fellBack.model.info).toMatchObject({ dtype: 'q4', backend: 'native' })
    expect(fellBack.fallback).toContain('memory budget')
    expect(host.formats?.().map(({ status }) => status.state)).toEqual(['ready', 'ready', 'idle'])
  }, 60_000)

  it("warns at load when the default format's sessions alone exceed the budget", async () => {
    const store = createNodeStore()
    const one = (await inspectPackage({ model: packageDir, dtype: 'q4', backend: 'wasm', store }))
      .estimatedMemoryBytes as number
    const logged: string[] = []
    const warn = vi
      .spyOn(console, 'warn')
      .mockImplementation((line: unknown) => void logged.push(String(line)))
    try {
      const host = createNodeModelHost({
        model: packageDir,
        dtype: 'q4',
        backend: 'wasm',
        sessions: 3,
        // The weights once and a cache per slot would fit twice this; three copies of the
        // weights (an instance per slot, as before the engine shared them) would not fit either.
        memoryBudgetBytes: one,
      })
      await host.load()
    } finally {
      warn.mockRestore()
    }
    expect(logged.join('\n')).toMatch(
      /3 sessions \(MAX_CONCURRENT\) need ~\d+ MiB \(~\d+ MiB for the weights and the first session, ~\d+ MiB for each further one's cache\).*lower MAX_CONCURRENT/,
    )
  }, 60_000)

  it("warns at load when the default format's one session exceeds the budget (it said nothing)", async () => {
    const logged: string[] = []
    const warn = vi
      .spyOn(console, 'warn')
      .mockImplementation((line: unknown) => void logged.push(String(line)))
    try {
      const host = createNodeModelHost({
        model: packageDir,
        dtype: 'q4',
        backend: 'wasm',
        sessions: 1,
        memoryBudgetBytes: 2 ** 20,
      })
      await host.load()
    } finally {
      warn.mockRestore()
    }
    expect(logged.join('\n')).toMatch(
      /The model \(q4 on wasm\) needs ~\d+ MiB, over this server's memory budget of 1 MiB \(MEMORY_BUDGET_MB\)/,
    )
  }, 60_000)

  it.each(['native', 'wasm'] as const)(
    "counts a %s format's weights once and each further slot's cache and activations (the engine's sessions share one instance)",
    async (backend) => {
      const store = createNodeStore()
      const figures = async (dtype: string) => {
        const info = await inspectPackage({ model: packageDir, dtype, backend, store })
        return { bytes: info.estimatedMemoryBytes as number, session: info.sessionMemoryBytes as number }
      }
      const q4 = await figures('q4')
      const q8 = await figures('q8')
      // A further session is its cache and one prompt's activations: far less than the weights.
      expect(q4.session).toBeGreaterThan(0)
      expect(q4.session).toBeLessThan(q4.bytes / 2)
      const needed = q4.bytes + 2 * q4.session + q8.bytes + 2 * q8.session
      // Three copies of each would not fit this budget; one copy and three caches of each do.
      expect(3 * (q4.bytes + q8.bytes)).toBeGreaterThan(needed + 2 ** 20)
      const formats = [
        { dtype: 'q4', backend },
        { dtype: 'q8', backend },
      ]
      const fits = createNodeModelHost({
        model: packageDir,
        formats,
        sessions: 3,
        memoryBudgetBytes: needed + 2 ** 20,
      })
      const short = createNodeModelHost({
        model: packageDir,
        formats,
        sessions: 3,
        memoryBudgetBytes: needed - 2 ** 20,
      })
      try {
        await fits.load()
        expect((await selectModel(fits, { dtype: 'q8', backend })).model.info.dtype).toBe('q8')
        await short.load()
        await expect(selectModel(short, { dtype: 'q8', backend })).rejects.toMatchObject({
          code: 'unsupported',
          message: expect.stringMatching(
            /it needs ~\d+ MiB \(~\d+ MiB for the weights and the first session, ~\d+ MiB for each further one's cache, for 3 MAX_CONCURRENT slots\)/,
          ),
        })
      } finally {
        await fits.dispose()
        await short.dispose()
      }
    },
    60_000,
  )

  it('refuses a budget that is not a number of bytes', () => {
    expect(() => createNodeModelHost({ model: packageDir, memoryBudgetBytes: -1 })).toThrow(
      /memoryBudgetBytes/,
    )
  })
})
