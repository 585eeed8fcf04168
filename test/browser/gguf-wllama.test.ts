// GGUF export checked by llama.cpp itself: wllama (llama.cpp's WebAssembly build, npm
// @wllama/wllama) in headless Chromium loads the GGUF that `ondevice export` writes for the tiny
// qwen3 fixture and the tiny Qwen3.5 fixture (llama.cpp's qwen35: Gated DeltaNet layers with
// more V heads than K heads, a gated full-attention layer, partial rotary) in F32, Q8_0, Q4_0 and
// Q4_1, and for stories260K (llama, converted from llama2.c) in F32, and decodes greedily. The
// builder's TypeScript reference then runs along llama.cpp's answer (each step in the same
// context on both sides) on the weights llama.cpp read: the float weights for F32, and for the
// quantized files the file's own tensors decoded as ggml's dequantization does
// (./gguf-dequantize.ts), so the comparison holds the quantization fixed. Every token llama.cpp
// chose must be the reference's greedy token (for the quantized files: unless the reference's
// margin is within the stated bound), and llama.cpp's log-probabilities of the chosen token and
// the runner-up (a greedy answer alone would not tell a wrong rotary order on stories260K, which
// stays on its story either way) must be the reference's within the bounds below. wllama's
// completion entry takes text, so the prompt goes in as text and llama.cpp's prompt-token count
// must equal our tokenizer's; the streamed text must be the GGUF vocabulary's text of the chosen
// ids. Tokens whose text is not UTF-8 on its own, and special tokens, are banned on both sides
// (test/browser/wllama.ts says why). One Chromium serves every case.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createQwen35State, qwen35Forward } from '../../builder/architectures/qwen3-5-reference.ts'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import {
  type GgufDtype,
  type GgufSourceWeights,
  isQwen35Model,
  type PackageSource,
  readGgufSource,
  writeGguf,
} from '../../builder/gguf/index.ts'
import { convertLlama2c } from '../../builder/importers/convert-llama2c.ts'
import { ReferenceModel } from '../../builder/reference/reference-model.ts'
import { Tokenizer } from '../../core/tokenizer.ts'
import { dequantizedWeights, type SourcePositions, sourcePositions } from './gguf-dequantize.ts'
import { bannedTokenIds, startWllamaSite, tokenText, type WllamaSite, type WllamaStep } from './wllama.ts'

const folder = mkdtempSync(join(tmpdir(), 'ondevice-gguf-wllama-'))
const stories = join(import.meta.dirname, '../../../shared/models/stories260K')
let site: WllamaSite

beforeAll(async () => {
  site = await startWllamaSite(folder)
}, 120_000)
afterAll(async () => {
  await site?.close()
  rmSync(folder, { recursive: true, force: true })
})

/** The builder's TypeScript reference for the weights: tokens in, logits out (the last at least), cached. */
function referenceModel(weights: GgufSourceWeights): (tokens: readonly number[]) => Float32Array[] {
  if (isQwen35Model(weights)) {
    const state = createQwen35State(weights.config)
    // Only the last position's logits are used: skip the LM head on the others.
    return (tokens) => qwen35Forward(weights, tokens, state, { logits: 'last' })
  }
  const model = new ReferenceModel(weights)
  return (tokens) => model.forward(tokens)
}

/** One step of the reference: its greedy choice (never a banned id) and its log-softmax. */
interface ReferenceStep {
  readonly best: number
  readonly logSoftmax: (id: number) => number
}

/**
 * The reference after `prompt` and then after each of `chosen` in turn (llama.cpp's answer):
 * one step per chosen token, so every step is compared in the same context on both sides.
 */
function referenceSteps(
  weights: GgufSourceWeights,
  prompt: readonly number[],
  chosen: readonly number[],
  banned: ReadonlySet<number>,
): ReferenceStep[] {
  const forward = referenceModel(weights)
  let logits = forward(prompt).at(-1)!
  const steps: ReferenceStep[] = []
  for (let step = 0; step < chosen.length; step++) {
    let best = -1
    for (let id = 0; id < logits.length; id++)
      if (!banned.has(id) && (best < 0 || logits[id]! > logits[best]!)) best = id
    let max = Number.NEGATIVE_INFINITY
    for (const value of logits) max = Math.max(max, value)
    let sum = 0
    for (const value of logits) sum += Math.exp(value - max)
    const current = logits
    const logSum = max + Math.log(sum)
    steps.push({ best, logSoftmax: (id: number) => current[id]! - logSum })
    if (step + 1 < chosen.length) logits = forward([chosen[step]!])[0]!
  }
  return steps
}

/** How far llama.cpp's log-probabilities are from the reference's along llama.cpp's answer. */
function compare(steps: readonly WllamaStep[], reference: readonly ReferenceStep[]) {
  let worstGap = 0
  let worst = 0
  /** Steps where llama.cpp chose another token than the reference, and the reference's margin there. */
  const differences: { step: number; margin: number }[] = []
  steps.forEach((step, index) => {
    const { best, logSoftmax } = reference[index]!
    if (step.id !== best) differences.push({ step: index, margin: logSoftmax(best) - logSoftmax(step.id) })
    const [first, second] = step.top
    const gap = first!.logprob - second!.logprob
    worstGap = Math.max(worstGap, Math.abs(gap - (logSoftmax(first!.id) - logSoftmax(second!.id))))
    for (const candidate of step.top)
      worst = Math.max(worst, Math.abs(candidate.logprob - logSoftmax(candidate.id)))
  })
  return { worstGap, worst, differences }
}

const tokenStrings = (source: PackageSource<GgufSourceWeights>) =>
  (source.tokenizer.get('tokenizer.ggml.tokens') as unknown as { value: string[] }).value
const tokenizerModel = (source: PackageSource<GgufSourceWeights>) =>
  (source.tokenizer.get('tokenizer.ggml.model') as unknown as { value: 'gpt2' | 'llama' }).value

/** How close llama.cpp must come to the reference. */
interface Bounds {
  /** The runner-up's gap (a difference of two logits). */
  readonly gap: number
  /** Each log-probability. */
  readonly value: number
  /** Where llama.cpp chose another token, the reference's margin between the two must be under this (0: the same tokens, always). */
  readonly tie: number
}

// F32 weights and KV cache, flash attention off (its CPU path rounds through f16: 4e-3 off
// here), so only the order of additions differs: the gap between the two (a logit difference)
// within 1e-4 (4e-6 measured, qwen35 included); each value within 1e-3, as llama.cpp sums the
// softmax's 151,936 terms in float (2.3e-4 measured on qwen3, 1.2e-5 on qwen35). Every token the
// reference's.
const f32Bounds: Bounds = { gap: 1e-4, value: 1e-3, tie: 0 }

/** A package's float weights and tokenizer, read once per package folder. */
const sources = new Map<string, Promise<PackageSource<GgufSourceWeights>>>()
const sourceOf = (packageFolder: string) => {
  let source = sources.get(packageFolder)
  if (!source) {
    source = readGgufSource(packageFolder)
    sources.set(packageFolder, source)
  }
  return source
}

/** Where each GGUF tensor's elements come from in the package's weights, found once per package folder. */
const positions = new Map<string, Promise<SourcePositions>>()
const positionsOf = (packageFolder: string) => {
  let found = positions.get(packageFolder)
  if (!found) {
    found = sourceOf(packageFolder).then((source) => sourcePositions(source.weights, folder))
    positions.set(packageFolder, found)
  }
  return found
}

async function check(
  packageFolder: string,
  file: string,
  prompt: string,
  count: number,
  dtype: GgufDtype = 'f32',
  bounds: Bounds = f32Bounds,
) {
  const source = await sourceOf(packageFolder)
  const path = join(folder, file)
  await writeGguf({ weights: source.weights, tokenizer: source.tokenizer, dtype, outPath: path })
  // The reference runs on what llama.cpp reads: the file's quantized tensors, decoded.
  const dequantized = dtype === 'f32' ? undefined : dequantizedWeights(await positionsOf(packageFolder), path)
  const vocabulary = tokenStrings(source)
  const model = tokenizerModel(source)
  const banned = bannedTokenIds(vocabulary, model)
  const tokenizer = Tokenizer.fromFiles({
    tokenizerJson: readFileSync(join(packageFolder, 'tokenizer.json'), 'utf8'),
    tokenizerConfigJson: readFileSync(join(packageFolder, 'tokenizer_config.json'), 'utf8'),
    configJson: readFileSync(join(packageFolder, 'config.json'), 'utf8'),
  })
  const promptIds = tokenizer.encode(prompt)
  const { page, close } = await site.newPage()
  try {
    const result = await site.run(page, {
      ggufUrl: `/gguf/${file}`,
      prompt,
      promptTokens: promptIds.length,
      maxTokens: count,
      threads: 1,
      bannedTokenIds: banned,
      topLogprobs: 2,
      kvCacheType: 'f32',
    })
    expect(result.error).toBeUndefined()
    // llama.cpp split the text into as many tokens as our tokenizer (BOS included for llama).
    expect(result.timings?.['prompt_n']).toBe(promptIds.length)
    const steps = result.steps!
    expect(steps).toHaveLength(count)
    const chosen = steps.map((step) => step.id)
    expect(result.texts).toEqual(chosen.map((id) => tokenText(vocabulary, model, id)))
    // llama.cpp's log-probabilities (softmax over the whole vocabulary, before the ban) of the
    // chosen token and the runner-up against the reference's, on the weights llama.cpp read.
    const weights = dequantized?.weights ?? source.weights
    const measured = compare(steps, referenceSteps(weights, promptIds, chosen, new Set(banned)))
    // The float weights the file was quantized from, for contrast (the cases say how much worse
    // they must explain llama.cpp's answer than the file's own decoded weights).
    const float = dequantized
      ? compare(steps, referenceSteps(source.weights, promptIds, chosen, new Set(banned)))
      : undefined
    for (const difference of measured.differences) expect(difference.margin).toBeLessThan(bounds.tie)
    expect(measured.worstGap).toBeLessThan(bounds.gap)
    expect(measured.worst).toBeLessThan(bounds.value)
    return { chosen, result, measured, float, decoded: dequantized?.decoded }
  } finally {
    await close()
  }
}

// Quantized: the reference runs on the file's decoded weights, so the weights' rounding is on
// both sides; what is left is llama.cpp's own rounding of the activations, which ggml quantizes
// to 8 bits per 32 values (Q8_0; Q8_1 for Q4_1 weights) before every product with a quantized
// matrix, while the reference keeps them in float. Measured on these fixtures (deterministic:
// one thread, the same files): the gap within 0.38, each value within 0.23 (qwen3 0.08-0.11,
// qwen35 0.06-0.23); llama.cpp chose another token only where the reference's own margin was
// under 0.18 (4 of qwen35 Q8_0's 16 steps, none elsewhere). A wrong layout or block format is
// off by whole units: the float weights explain the 4-bit files' answers 1.5-3.1 off, and a
// Q4_0 with its two nibbles swapped (in the writer and the decoder alike) fails with llama.cpp
// choosing tokens 2.8 and 11.6 below the reference's best.
const quantizedBounds: Bounds = { gap: 0.5, value: 0.3, tie: 0.25 }

/** The decoded tensors include `names`, each in the export's block type. */
function expectQuantized(decoded: ReadonlyMap<string, string>, dtype: GgufDtype, names: readonly string[]) {
  for (const name of names) expect(decoded.get(name), name).toBe(dtype.toUpperCase())
}

describe('GGUF export, loaded by llama.cpp (wllama in Chromium)', () => {
  // Each fixture written once, by whichever case needs it first.
  const fixtures = new Map<'qwen3' | 'qwen3_5', Promise<string>>()
  const fixture = (arch: 'qwen3' | 'qwen3_5') => {
    let written = fixtures.get(arch)
    if (!written) {
      const outDir = join(folder, `${arch}-tiny`)
      written = writeFixture({ arch, outDir, dtype: 'fp32' }).then(() => outDir)
      fixtures.set(arch, written)
    }
    return written
  }
  const qwen3Prompt = 'Hello, my dog is cute. 你好世界 1234'
  // Over 64 prompt tokens: llama.cpp's chunked DeltaNet prefill crosses a chunk boundary before
  // the recurrent decode steps.
  const qwen35Prompt = 'Hello, my dog is cute. 你好世界 1234. '.repeat(5)

  it('tiny qwen3 fixture, F32: the same 16 greedy tokens as the reference', async () => {
    const { chosen: expected } = await check(await fixture('qwen3'), 'qwen3-tiny-f32.gguf', qwen3Prompt, 16)
    // A random model that repeated one token would prove little: the answer moves.
    expect(new Set(expected).size).toBeGreaterThan(2)
  }, 120_000)

  it.each(['q8_0', 'q4_0', 'q4_1'] as const)(
    'tiny qwen3 fixture, %s: the reference on the decoded weights gives the same tokens, within its bound',
    async (dtype) => {
      const { chosen, measured, float, decoded } = await check(
        await fixture('qwen3'),
        `qwen3-tiny-${dtype}.gguf`,
        qwen3Prompt,
        16,
        dtype,
        quantizedBounds,
      )
      expect(new Set(chosen).size).toBeGreaterThan(1)
      expectQuantized(decoded!, dtype, ['token_embd.weight', 'blk.1.attn_q.weight', 'blk.1.ffn_down.weight'])
      if (dtype !== 'q8_0') expect(float!.worst).toBeGreaterThan(4 * measured.worst)
    },
    120_000,
  )

  it('tiny Qwen3.5 fixture (qwen35), F32: the same 16 greedy tokens as the reference', async () => {
    const { chosen: expected } = await check(
      await fixture('qwen3_5'),
      'qwen3_5-tiny-f32.gguf',
      qwen35Prompt,
      16,
    )
    expect(new Set(expected).size).toBeGreaterThan(2)
  }, 120_000)

  it.each(['q8_0', 'q4_0', 'q4_1'] as const)(
    'tiny Qwen3.5 fixture (qwen35), %s: the reference on the decoded weights gives the same tokens, within its bound',
    async (dtype) => {
      const { chosen, measured, float, decoded } = await check(
        await fixture('qwen3_5'),
        `qwen3_5-tiny-${dtype}.gguf`,
        qwen35Prompt,
        16,
        dtype,
        quantizedBounds,
      )
      expect(new Set(chosen).size).toBeGreaterThan(1)
      // Every matrix of the Gated DeltaNet layers in the block type too, ssm_beta and ssm_alpha
      // included (as llama.cpp's converter writes them); the conv kernel, ssm_a, ssm_dt and the
      // norms stay F32 (nothing decoded).
      expectQuantized(decoded!, dtype, [
        'token_embd.weight',
        'blk.0.attn_qkv.weight',
        'blk.0.attn_gate.weight',
        'blk.0.ssm_beta.weight',
        'blk.0.ssm_alpha.weight',
        'blk.0.ssm_out.weight',
        'blk.3.attn_q.weight',
        'blk.3.ffn_up.weight',
      ])
      for (const name of decoded!.keys()) expect(name).not.toMatch(/norm|ssm_conv1d|ssm_a$|ssm_dt/)
      if (dtype !== 'q8_0') expect(float!.worst).toBeGreaterThan(4 * measured.worst)
    },
    120_000,
  )

  it('stories260K (llama from llama2.c), F32: the same 40 greedy tokens as the reference', async () => {
    const pkg = join(folder, 'stories')
    await convertLlama2c({
      checkpointPath: join(stories, 'stories260K.bin'),
      tokenizerPath: join(stories, 'tok512.bin'),
      outDir: pkg,
      dtypes: ['fp32'],
    })
    const { result } = await check(pkg, 'stories-f32.gguf', 'Once upon a time, there was a little girl', 40)
    expect(result.texts.join('')).toMatch(/^[ a-zA-Z.,!"']+$/)
  }, 120_000)
})
