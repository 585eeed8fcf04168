// GGUF export checked by llama.cpp itself: wllama (llama.cpp's WebAssembly build, npm
// @wllama/wllama) in headless Chromium loads the F32 GGUF that `ondevice export` writes for the
// tiny qwen3 fixture, for the tiny Qwen3.5 fixture (llama.cpp's qwen35: Gated DeltaNet layers
// with more V heads than K heads, a gated full-attention layer, partial rotary) and for
// stories260K (llama, converted from llama2.c) and decodes greedily;
// every generated token must be the builder's TypeScript reference's greedy token on the same
// prompt. wllama's completion entry takes text, so the prompt goes in as text and llama.cpp's
// prompt-token count must equal our tokenizer's. Its log-probabilities give the chosen ids and
// the runner-up at each step, compared with the reference's log-softmax (a greedy answer alone
// would not tell a wrong rotary order on stories260K, which stays on its story either way); the
// streamed text must be the GGUF vocabulary's text of those ids. Tokens whose text is not UTF-8
// on its own, and special tokens, are banned on both sides (test/browser/wllama.ts says why).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createQwen35State, qwen35Forward } from '../../builder/architectures/qwen3-5-reference.ts'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import {
  type GgufSourceWeights,
  isQwen35Model,
  type PackageSource,
  readGgufSource,
  writeGguf,
} from '../../builder/gguf/index.ts'
import { convertLlama2c } from '../../builder/importers/convert-llama2c.ts'
import { ReferenceModel } from '../../builder/reference/reference-model.ts'
import { Tokenizer } from '../../core/tokenizer.ts'
import { bannedTokenIds, startWllamaSite, tokenText, type WllamaSite } from './wllama.ts'

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

/** The reference's greedy tokens after `prompt`, never choosing a banned id, with each step's log-softmax. */
function referenceGreedy(
  source: PackageSource<GgufSourceWeights>,
  prompt: readonly number[],
  count: number,
  banned: ReadonlySet<number>,
) {
  const forward = referenceModel(source.weights)
  let logits = forward(prompt).at(-1)!
  const tokens: number[] = []
  const logSoftmax: ((id: number) => number)[] = []
  for (let step = 0; step < count; step++) {
    let best = -1
    for (let id = 0; id < logits.length; id++)
      if (!banned.has(id) && (best < 0 || logits[id]! > logits[best]!)) best = id
    tokens.push(best)
    let max = Number.NEGATIVE_INFINITY
    for (const value of logits) max = Math.max(max, value)
    let sum = 0
    for (const value of logits) sum += Math.exp(value - max)
    const current = logits
    const logSum = max + Math.log(sum)
    logSoftmax.push((id: number) => current[id]! - logSum)
    if (step + 1 < count) logits = forward([best])[0]!
  }
  return { tokens, logSoftmax }
}

const tokenStrings = (source: PackageSource<GgufSourceWeights>) =>
  (source.tokenizer.get('tokenizer.ggml.tokens') as unknown as { value: string[] }).value
const tokenizerModel = (source: PackageSource<GgufSourceWeights>) =>
  (source.tokenizer.get('tokenizer.ggml.model') as unknown as { value: 'gpt2' | 'llama' }).value

async function check(packageFolder: string, file: string, prompt: string, count: number) {
  const source = await readGgufSource(packageFolder)
  await writeGguf({
    weights: source.weights,
    tokenizer: source.tokenizer,
    dtype: 'f32',
    outPath: join(folder, file),
  })
  const vocabulary = tokenStrings(source)
  const model = tokenizerModel(source)
  const banned = bannedTokenIds(vocabulary, model)
  const tokenizer = Tokenizer.fromFiles({
    tokenizerJson: readFileSync(join(packageFolder, 'tokenizer.json'), 'utf8'),
    tokenizerConfigJson: readFileSync(join(packageFolder, 'tokenizer_config.json'), 'utf8'),
    configJson: readFileSync(join(packageFolder, 'config.json'), 'utf8'),
  })
  const promptIds = tokenizer.encode(prompt)
  const { tokens: expected, logSoftmax } = referenceGreedy(source, promptIds, count, new Set(banned))
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
    expect(result.steps?.map((step) => step.id)).toEqual(expected)
    expect(result.texts).toEqual(expected.map((id) => tokenText(vocabulary, model, id)))
    // llama.cpp's log-probabilities (softmax over the whole vocabulary, before the ban) of the
    // chosen token and the runner-up equal the reference's. F32 weights and KV cache, flash
    // attention off (its CPU path rounds through f16: 4e-3 off here), so only the order of
    // additions differs: the gap between the two (a logit difference) within 1e-4 (4e-6
    // measured, qwen35 included); each value within 1e-3, as llama.cpp sums the softmax's
    // 151,936 terms in float (2.3e-4 measured on qwen3, 1.2e-5 on qwen35).
    let worstGap = 0
    let worst = 0
    result.steps!.forEach((step, index) => {
      const [first, second] = step.top
      const gap = first!.logprob - second!.logprob
      const expectedGap = logSoftmax[index]!(first!.id) - logSoftmax[index]!(second!.id)
      worstGap = Math.max(worstGap, Math.abs(gap - expectedGap))
      for (const candidate of step.top)
        worst = Math.max(worst, Math.abs(candidate.logprob - logSoftmax[index]!(candidate.id)))
    })
    expect(worstGap).toBeLessThan(1e-4)
    expect(worst).toBeLessThan(1e-3)
    return { expected, result, worst }
  } finally {
    await close()
  }
}

describe('GGUF export, loaded by llama.cpp (wllama in Chromium)', () => {
  it('tiny qwen3 fixture, F32: the same 16 greedy tokens as the reference', async () => {
    const pkg = join(folder, 'qwen3-tiny')
    await writeFixture({ arch: 'qwen3', outDir: pkg, dtype: 'fp32' })
    const { expected } = await check(pkg, 'qwen3-tiny-f32.gguf', 'Hello, my dog is cute. 你好世界 1234', 16)
    // A random model that repeated one token would prove little: the answer moves.
    expect(new Set(expected).size).toBeGreaterThan(2)
  }, 120_000)

  it('tiny Qwen3.5 fixture (qwen35), F32: the same 16 greedy tokens as the reference', async () => {
    const pkg = join(folder, 'qwen3_5-tiny')
    await writeFixture({ arch: 'qwen3_5', outDir: pkg, dtype: 'fp32' })
    // Over 64 prompt tokens: llama.cpp's chunked DeltaNet prefill crosses a chunk boundary before
    // the recurrent decode steps.
    const prompt = 'Hello, my dog is cute. 你好世界 1234. '.repeat(5)
    const { expected } = await check(pkg, 'qwen3_5-tiny-f32.gguf', prompt, 16)
    expect(new Set(expected).size).toBeGreaterThan(2)
  }, 120_000)

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
