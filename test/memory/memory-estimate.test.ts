// The manifest's memory estimate against the measured peak: a fresh Node process per backend
// loads a mid-size package (the Qwen3 vocabulary and tokenizer, 2 layers of hidden 512: 320 MB
// of fp32 weights, so the weights and not the runtime's jitter dominate), feeds a 500-token
// prompt (the estimate's stated workload: a prompt of up to 512 tokens) and generates 8 tokens.
// The figure the router would read (manifest.json, at that context) must be within 15 % of what
// the process's peak resident memory (VmHWM) grew by.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomDecoderWeights } from '../../builder/architectures/random-weights.ts'
import { qwen3TokenizerFiles } from '../../builder/fixtures/fixture.ts'
import { writeModelPackage } from '../../builder/package/package-writer.ts'
import { parseModelConfig } from '../../core/model-package.ts'
import { estimateRun, measurePeak } from './measure.ts'
import type { PeakProbeRequest } from './peak-probe.ts'

const linux = process.platform === 'linux'
let folder = ''

beforeAll(async () => {
  folder = join(mkdtempSync(join(tmpdir(), 'ondevice-memory-')), 'mid')
  const config = parseModelConfig({
    model_type: 'qwen3',
    hidden_size: 512,
    intermediate_size: 1536,
    num_hidden_layers: 2,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    head_dim: 64,
    vocab_size: 151936,
    max_position_embeddings: 4096,
    tie_word_embeddings: true,
    eos_token_id: 151645,
  })
  await writeModelPackage({
    outDir: folder,
    weights: randomDecoderWeights(config, 7),
    tokenizer: qwen3TokenizerFiles(),
    dtypes: ['fp32', 'q8'],
    name: 'qwen3-mid-seed7',
  })
}, 120_000)

afterAll(() => {
  if (folder) rmSync(join(folder, '..'), { recursive: true, force: true })
})

describe.skipIf(!linux)('estimatedMemory against the measured peak (fresh process, VmHWM)', () => {
  const cases: readonly Pick<PeakProbeRequest, 'backend' | 'dtype'>[] = [
    { backend: 'wasm', dtype: 'fp32' },
    { backend: 'native', dtype: 'q8' },
    // The tied table's second, prepacked copy (0.78 of the peak before it was modelled).
    { backend: 'native', dtype: 'fp32' },
    // The 8-bit lookup-only table beside the int8 head (1.20 before).
    { backend: 'ort-wasm', dtype: 'q8' },
  ]
  for (const { backend, dtype } of cases)
    it(`${backend} ${dtype}: the manifest's figure is within 15 % of the peak`, async () => {
      const request: PeakProbeRequest = { folder, backend, dtype, promptTokens: 500, maxTokens: 8 }
      const measured = await measurePeak(request)
      expect(measured.backend).toBe(backend)
      expect(measured.tokens).toBe(8)
      const { manifest, model } = estimateRun(request)
      expect(manifest).toBeDefined()
      const ratio = (manifest as number) / measured.addedBytes
      const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`
      const detail = `${backend} ${dtype}: manifest ${mib(manifest as number)}, model for the run ${mib(model.bytes)}, measured ${mib(measured.addedBytes)} (ratio ${ratio.toFixed(2)})`
      expect(ratio, detail).toBeGreaterThan(0.85)
      expect(ratio, detail).toBeLessThan(1.15)
    }, 120_000)
})
