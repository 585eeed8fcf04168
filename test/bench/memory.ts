// `npm run bench:memory`: the manifest's memory estimate beside the measured peak, per backend and
// dtype, on the full-size shapes. Each measurement is a fresh Node process (test/memory/peak-probe.ts:
// load through the SDK's path, a prompt, a few greedy tokens) reporting how far its peak resident
// memory (VmHWM) rose above where it stood before the load. A script that prints a markdown table;
// never a test (test/memory/ checks the 15 % bound on the Qwen3.5 tiny fixture and a mid-size
// package; core/memory-estimate.test.ts replays the measured table).
//   npm run bench:memory                                  Qwen3.5 tiny, Qwen3-0.6B and Qwen3.5-0.8B shapes
//   npm run bench:memory -- --packages qwen3_5-0.8b       some of them
//   npm run bench:memory -- --folder DIR                  any package folder too (all its dtypes)
//   npm run bench:memory -- --prompt 32 --tokens 8        the run (default 32 and 8)
//   npm run bench:memory -- --backends wasm,native        some backends (default wasm, ort-wasm, native)
//   npm run bench:memory -- --cache DIR                   where built packages live (as npm run bench)
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { Backend } from '../../client-runtime/dtype.ts'
import { parsePackageManifest } from '../../core/model-package.ts'
import { estimateRun, measurePeak } from '../memory/measure.ts'
import type { PeakProbeRequest } from '../memory/peak-probe.ts'
import { defaultCacheFolder, ensurePackage, type PackageId, packageIds } from './support/packages.ts'
import { markdownTable } from './support/stats.ts'

const { values } = parseArgs({
  options: {
    packages: { type: 'string', default: 'qwen3_5-tiny,qwen3-0.6b,qwen3_5-0.8b' },
    folder: { type: 'string', multiple: true },
    prompt: { type: 'string', default: '32' },
    tokens: { type: 'string', default: '8' },
    backends: { type: 'string', default: 'wasm,ort-wasm,native' },
    cache: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
})
if (values.help) {
  console.log(
    'npm run bench:memory [-- --packages ID[,ID]] [--folder DIR] [--prompt N] [--tokens N] [--backends B[,B]] [--cache DIR]',
  )
  process.exit(0)
}
const positive = (text: string, name: string): number => {
  const value = Number(text)
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`--${name} must be a positive integer (got ${text}).`)
  return value
}
const promptTokens = positive(values.prompt, 'prompt')
const maxTokens = positive(values.tokens, 'tokens')
const backends = values.backends.split(',') as Backend[]
for (const backend of backends)
  if (!['wasm', 'ort-wasm', 'native'].includes(backend))
    throw new Error(
      `--backends: ${backend} cannot be measured here (use wasm, ort-wasm, native; webgpu needs a GPU).`,
    )
const ids = values.packages === '' ? [] : (values.packages.split(',') as PackageId[])
for (const id of ids)
  if (!packageIds.includes(id)) throw new Error(`--packages ${id}: packages are ${packageIds.join(', ')}.`)

const cacheFolder = values.cache ? resolve(values.cache) : defaultCacheFolder()
const folders: { label: string; folder: string }[] = []
for (const id of ids) {
  const pkg = await ensurePackage(id, cacheFolder, (line) => console.error(line))
  folders.push({ label: pkg.label, folder: pkg.folder })
}
for (const folder of values.folder ?? []) folders.push({ label: folder, folder: resolve(folder) })

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`
const rows: string[][] = []
const started = performance.now()
console.error(`load average at the start: ${loadavg()[0]?.toFixed(1)}`)
for (const { label, folder } of folders) {
  const manifest = parsePackageManifest(readFileSync(join(folder, 'manifest.json'), 'utf8'))
  for (const dtype of manifest.dtypes)
    for (const backend of backends) {
      const request: PeakProbeRequest = { folder, backend, dtype, promptTokens, maxTokens }
      const estimate = estimateRun(request)
      // What the builder writes now (the package may have been built by an older calibration).
      const planned = estimateRun({
        ...request,
        promptTokens: 512,
        maxTokens: (manifest.contextLength ?? 4096) - 512,
      })
      const base = [label, backend, dtype, mib(estimate.model.bytes), mib(planned.model.bytes)]
      // onnxruntime-web's heap is wasm32's: a package it cannot hold fails to load, as the router predicts.
      if (backend === 'ort-wasm' && estimate.model.bytes > 4 * 2 ** 30) {
        rows.push([...base, 'over wasm32’s 4 GiB: not run', '—', '—'])
        continue
      }
      console.error(`${label}: ${backend} ${dtype}...`)
      try {
        const measured = await measurePeak(request, 900_000)
        rows.push([
          ...base,
          mib(measured.addedBytes),
          (estimate.model.bytes / measured.addedBytes).toFixed(2),
          `${measured.backend} ${measured.dtype}, load ${(measured.loadMs / 1000).toFixed(1)} s`,
        ])
      } catch (error) {
        rows.push([...base, `failed: ${(error as Error).message.split('\n')[0]}`, '—', '—'])
      }
    }
}
console.log(
  markdownTable({
    title: `Memory: estimate vs measured peak (fresh process, load + ${promptTokens}-token prompt + ${maxTokens} tokens)`,
    columns: [
      'package',
      'backend',
      'dtype',
      `estimate for this run`,
      'manifest figure (context 4096, prompt 512)',
      'measured peak added',
      'estimate / measured',
      'ran',
    ],
    rows,
    notes: [
      'measured: VmHWM of the probe process minus its resident memory before the load (Node, V8 and the modules imported)',
      'estimate for this run: core/memory-estimate.ts for this prompt and a context of prompt + tokens; the manifest figure is what the builder writes for the package (context 4096, a prompt of up to 512 tokens; the router scales its cache part to the context it will use)',
      'webgpu is not measured here (no GPU): its figure is derived (docs/benchmarks.md, "Memory estimates")',
      `${((performance.now() - started) / 1000).toFixed(0)} s, load average ${loadavg()[0]?.toFixed(1)} at the end`,
    ],
  }),
)
