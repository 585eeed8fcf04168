// Estimate beside measurement: the memory model's figure for a package, a backend and a run
// (core/memory-estimate.ts, fed from the package's manifest as the builder feeds it), and the
// peak a fresh process actually adds for that run (peak-probe.ts).
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { readModelSummary } from '../../builder/onnx/index.ts'
import { estimateMemory, type MemoryBackend, type MemoryEstimate } from '../../core/memory-estimate.ts'
import {
  type ModelDtype,
  manifestMemoryEstimate,
  onnxFileNames,
  parseModelConfig,
  parsePackageManifest,
} from '../../core/model-package.ts'
import { memoryInputsFromFiles } from '../../core/package-memory.ts'
import type { PeakProbeRequest, PeakProbeResult } from './peak-probe.ts'

const run = promisify(execFile)

/** The model's estimate for exactly this run (prompt, then tokens), and the manifest's stored figure at that context. */
export function estimateRun(request: PeakProbeRequest): {
  model: MemoryEstimate
  manifest: number | undefined
} {
  const manifest = parsePackageManifest(readFileSync(join(request.folder, 'manifest.json'), 'utf8'))
  const config = parseModelConfig(readFileSync(join(request.folder, 'config.json'), 'utf8'))
  const tokenizerBytes = manifest.files.find((file) => file.path === 'tokenizer.json')?.bytes ?? 0
  const contextLength = request.promptTokens + request.maxTokens
  const dtype = request.dtype as ModelDtype
  // Whether a prefill computes every position's logits is the graph's to say: packages built
  // before the Llama / Qwen3 graphs took num_logits_to_keep (bench caches) still do.
  const decoder = readModelSummary(
    new Uint8Array(readFileSync(join(request.folder, onnxFileNames(config.modelType, dtype).model))),
  )
  const inputs = memoryInputsFromFiles(config, dtype, manifest.files, tokenizerBytes, contextLength, {
    allPositionLogits: !decoder.inputs.some((input) => input.name === 'num_logits_to_keep'),
  })
  const backend = request.backend as MemoryBackend
  return {
    model: estimateMemory(backend, { ...inputs, promptTokens: request.promptTokens }),
    manifest: manifestMemoryEstimate(manifest, request.dtype, backend, contextLength)?.bytes,
  }
}

/** Runs the probe in a fresh Node process (the one running this, with the same conditions). */
export async function measurePeak(request: PeakProbeRequest, timeoutMs = 600_000): Promise<PeakProbeResult> {
  const { stdout } = await run(
    process.execPath,
    ['--conditions=ondevice-source', join(import.meta.dirname, 'peak-probe.ts'), JSON.stringify(request)],
    { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } },
  )
  const last = stdout.trim().split('\n').at(-1) ?? ''
  return JSON.parse(last) as PeakProbeResult
}
