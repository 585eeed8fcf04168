// Which form of the relaxed-SIMD 4-bit products a host runs (./dot-form.ts): the request (engine
// option, ONDEVICE_ENGINE_DOT) and its errors, and the probe that times both forms. The bytes are
// the same either way (prefill-kernels.test.ts per kernel, engine.test.ts and cross-arch.test.ts
// per model), so these tests check the choice is valid and honoured, never which is faster.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { writeQwen35Fixture } from '../../builder/architectures/qwen3-5-fixture.ts'
import { InvalidArgumentError } from '../../core/errors.ts'
import {
  chooseDotForms,
  dotFormProbesRun,
  dotFormRequest,
  dotFormsToWarm,
  probeDotForms,
} from './dot-form.ts'
import { compileEngine, Kernels } from './kernels.ts'
import { folderWeightReader, loadEngineModule } from './node.ts'
import { createEngineSession } from './session.ts'

const saved = process.env.ONDEVICE_ENGINE_DOT
afterEach(() => {
  if (saved === undefined) delete process.env.ONDEVICE_ENGINE_DOT
  else process.env.ONDEVICE_ENGINE_DOT = saved
})

describe('the dot-form request', () => {
  it("is 'auto' unless the option or ONDEVICE_ENGINE_DOT says otherwise; the option wins", () => {
    delete process.env.ONDEVICE_ENGINE_DOT
    expect(dotFormRequest()).toBe('auto')
    expect(dotFormRequest('dot-add')).toBe('dot-add')
    process.env.ONDEVICE_ENGINE_DOT = 'pairs'
    expect(dotFormRequest()).toBe('pairs')
    expect(dotFormRequest('auto')).toBe('auto')
    process.env.ONDEVICE_ENGINE_DOT = ''
    expect(dotFormRequest()).toBe('auto')
    expect(dotFormsToWarm('auto')).toEqual(['pairs', 'dot-add'])
    expect(dotFormsToWarm('dot-add')).toEqual(['dot-add'])
  })

  it('rejects an unknown value, naming the values it takes and where it came from', () => {
    delete process.env.ONDEVICE_ENGINE_DOT
    expect(() => dotFormRequest('sdot')).toThrow(InvalidArgumentError)
    expect(() => dotFormRequest('sdot')).toThrow(/dot must be 'auto', 'pairs' or 'dot-add'.*"sdot"/)
    expect(() => dotFormRequest('sdot')).toThrow(
      expect.objectContaining({ code: 'invalid_argument', param: 'dot' }),
    )
    process.env.ONDEVICE_ENGINE_DOT = 'vnni'
    expect(() => dotFormRequest()).toThrow(/ONDEVICE_ENGINE_DOT must be 'auto', 'pairs' or 'dot-add'.*"vnni"/)
    expect(() => dotFormRequest()).toThrow(
      expect.objectContaining({ code: 'invalid_argument', param: 'ONDEVICE_ENGINE_DOT' }),
    )
  })

  it('a bad value fails createEngineSession before anything loads', async () => {
    delete process.env.ONDEVICE_ENGINE_DOT
    const files = folderWeightReader('/nonexistent-package-folder')
    const module = await loadEngineModule('relaxed')
    await expect(
      createEngineSession({ module, files, dtype: 'q4', dot: 'fast' as unknown as 'auto' }),
    ).rejects.toThrow(expect.objectContaining({ code: 'invalid_argument', param: 'dot' }))
    process.env.ONDEVICE_ENGINE_DOT = 'fast'
    await expect(createEngineSession({ module, files, dtype: 'q4' })).rejects.toThrow(
      /ONDEVICE_ENGINE_DOT must be/,
    )
  })
})

describe('the probe', () => {
  it('times both forms of both products and returns a valid choice; it leaves the arena as it found it', async () => {
    const kernels = await Kernels.create(await loadEngineModule('relaxed'))
    const below = kernels.alloc(4096)
    kernels.bytes(below, 4096).fill(0x5a)
    const top = kernels.mark()
    const forms = probeDotForms(kernels)
    expect(['pairs', 'dot-add']).toContain(forms.prefill)
    expect(['pairs', 'dot-add']).toContain(forms.decode)
    expect(forms.chosenBy).toBe('measured')
    for (const problem of [forms.probe!.prefill, forms.probe!.decode])
      for (const micros of Object.values(problem)) expect(micros).toBeGreaterThan(0)
    // The faster of each (by its best round) is the one chosen.
    const faster = (times: Record<string, number>) => (times['dot-add']! < times.pairs! ? 'dot-add' : 'pairs')
    expect(forms.prefill).toBe(faster(forms.probe!.prefill))
    expect(forms.decode).toBe(faster(forms.probe!.decode))
    expect(forms.probe!.milliseconds).toBeGreaterThan(0)
    expect(kernels.dot).toBeUndefined()
    expect(kernels.mark()).toBe(top)
    expect(kernels.bytes(below, 4096).every((byte) => byte === 0x5a)).toBe(true)
    const above = kernels.bytes(top, kernels.memory.buffer.byteLength - top)
    expect(above.every((byte) => byte === 0)).toBe(true)
  })

  it("chooseDotForms honours a forced form without probing, measures for 'auto', and needs a relaxed build", async () => {
    const kernels = await Kernels.create(await loadEngineModule('relaxed'))
    expect(chooseDotForms(kernels, 'dot-add')).toEqual({
      prefill: 'dot-add',
      decode: 'dot-add',
      chosenBy: 'requested',
    })
    expect(kernels.dot?.prefill).toBe('dot-add')
    expect(chooseDotForms(kernels, 'auto').chosenBy).toBe('measured')
    const plain = await Kernels.create(await loadEngineModule('plain'))
    expect(() => chooseDotForms(plain, 'pairs')).toThrow(/relaxed-SIMD builds/)
  })
})

describe('the probe runs once per compiled module', () => {
  it("a second session of the same module reuses the first's choice (no probe); another module, or a forced form, does not", async () => {
    delete process.env.ONDEVICE_ENGINE_DOT
    const folder = await mkdtemp(join(tmpdir(), 'ondevice-dot-form-'))
    try {
      const dir = join(folder, 'tiny')
      await writeQwen35Fixture({ outDir: dir, seed: 5, dtypes: ['q4'] })
      const module = await loadEngineModule('relaxed')
      const open = async (from: WebAssembly.Module, dot?: 'auto' | 'pairs') => {
        const session = await createEngineSession({
          module: from,
          files: folderWeightReader(dir),
          dtype: 'q4',
          warmUp: false,
          ...(dot ? { dot } : {}),
        })
        const build = session.build
        await session.dispose()
        return build
      }
      const before = dotFormProbesRun()
      const first = await open(module)
      // This module may have been probed by an earlier test of this file: then first is remembered too.
      const probedFirst = dotFormProbesRun() - before
      expect(first.dot?.chosenBy).toBe('measured')
      expect(probedFirst).toBe(first.dot?.remembered ? 0 : 1)
      const second = await open(module, 'auto')
      expect(dotFormProbesRun() - before).toBe(probedFirst)
      expect(second.dot).toEqual({ ...first.dot, remembered: true })
      // A forced form never probes, and does not replace what the module's probe chose.
      expect((await open(module, 'pairs')).dot).toEqual({
        prefill: 'pairs',
        decode: 'pairs',
        chosenBy: 'requested',
      })
      expect(dotFormProbesRun() - before).toBe(probedFirst)
      expect((await open(module)).dot?.remembered).toBe(true)
      // A module compiled afresh (another page, another process) measures for itself, once.
      const bytes = await readFile(fileURLToPath(new URL('./engine-relaxed.wasm', import.meta.url)))
      const fresh = await compileEngine(new Uint8Array(bytes))
      const third = await open(fresh)
      expect(third.dot?.remembered).toBeUndefined()
      expect(third.dot?.chosenBy).toBe('measured')
      expect(dotFormProbesRun() - before).toBe(probedFirst + 1)
      expect((await open(fresh)).dot?.remembered).toBe(true)
      expect(dotFormProbesRun() - before).toBe(probedFirst + 1)
    } finally {
      await rm(folder, { recursive: true, force: true })
    }
  }, 60_000)
})
