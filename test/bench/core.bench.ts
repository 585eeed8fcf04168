// `npm run bench:core`: the sampler's cost per step on a Qwen3.5-sized vocabulary (248,320
// logits) against a straightforward full-sort implementation of the same spec, and the
// tokenizer's encode throughput on mixed-language text. A script that prints figures, not a test.
import { counterUniform, Sampler, type SamplingOptions } from '../../core/sampler.ts'
import { qwen3Tokenizer } from '../support/qwen3-tokenizer.ts'
import { referenceSample } from '../support/reference-sampler.ts'

const vocabularySize = 248_320
const options: SamplingOptions = { temperature: 0.7, topK: 50, topP: 0.9, repetitionPenalty: 1.1, seed: 1234 }

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

// Model-like logits: a smooth bulk plus a few strong candidates, different at every step.
function logitsFor(step: number): Float32Array {
  const logits = new Float32Array(vocabularySize)
  for (let id = 0; id < vocabularySize; id++) {
    const u = counterUniform(step + 1000, id)
    logits[id] = (u - 0.5) * 6 + (u > 0.9998 ? 10 * u : 0)
  }
  return logits
}

const history = Array.from({ length: 512 }, (_, index) => (index * 7919) % vocabularySize)
const steps = 60
const inputs = Array.from({ length: steps }, (_, step) => logitsFor(step))

function timeSteps(sample: (logits: Float32Array, step: number) => number): {
  medianMs: number
  tokens: number[]
} {
  const times: number[] = []
  const tokens: number[] = []
  for (let step = 0; step < steps; step++) {
    const logits = inputs[step]!.slice()
    const started = performance.now()
    tokens.push(sample(logits, step))
    times.push(performance.now() - started)
  }
  return { medianMs: median(times.slice(5)), tokens }
}

const sampler = new Sampler(options)
// Warm both up so the JIT has compiled them before timing.
for (let step = 0; step < 5; step++) {
  sampler.sample(inputs[step]!.slice(), history, step, 0)
  referenceSample(inputs[step]!, options, history, step, 0)
}
const fast = timeSteps((logits, step) => sampler.sample(logits, history, step, 0))
const reference = timeSteps((logits, step) => referenceSample(logits, options, history, step, 0))
const agree = fast.tokens.every((token, index) => token === reference.tokens[index])

console.log(
  `Sampling step, ${vocabularySize.toLocaleString('en-US')} logits, ${JSON.stringify(options)}, ${history.length} previous tokens`,
)
console.log(`  ondevice Sampler (heap top-k):  ${fast.medianMs.toFixed(3)} ms median per step`)
console.log(`  full-sort reference:            ${reference.medianMs.toFixed(3)} ms median per step`)
console.log(
  `  speed-up: ${(reference.medianMs / fast.medianMs).toFixed(1)}x; same tokens in all ${steps} steps: ${agree ? 'yes' : 'NO'}`,
)
console.log(
  `  targets (>= 10x, < 2 ms): ${reference.medianMs / fast.medianMs >= 10 && fast.medianMs < 2 ? 'met' : 'NOT met'}`,
)

// Tokenizer encode throughput on mixed-language text.
const paragraph = [
  'The quick brown fox jumps over the lazy dog while the model streams its answer token by token. ',
  '敏捷的棕色狐狸跳过了懒狗，模型逐个词元地输出答案。',
  '素早い茶色の狐がのろまな犬を飛び越え、モデルはトークンごとに答えを流します。',
  'Быстрая коричневая лиса перепрыгивает через ленивую собаку. ',
  'الثعلب البني السريع يقفز فوق الكلب الكسول. ',
  'function greet(name: string): string {\n  return "Hello, " + name + "! 👋"\n}\n',
  'Emoji and symbols: 😀 👨‍👩‍👧 ∑ √ ∞ → ✓ 1234567890\n\n',
].join('')
const tokenizer = qwen3Tokenizer()
const text = paragraph.repeat(Math.ceil(1_000_000 / new TextEncoder().encode(paragraph).length))
const bytes = new TextEncoder().encode(text).length
tokenizer.encode(text.slice(0, 20_000))
const runs: number[] = []
let tokenCount = 0
for (let run = 0; run < 3; run++) {
  const started = performance.now()
  tokenCount = tokenizer.encode(text).length
  runs.push((performance.now() - started) / 1000)
}
const seconds = median(runs)
console.log(`Tokenizer encode (Qwen3 tokenizer.json), ${(bytes / 1e6).toFixed(2)} MB of mixed-language text`)
console.log(
  `  ${(bytes / 1e6 / seconds).toFixed(2)} MB/s, ${Math.round(tokenCount / seconds).toLocaleString('en-US')} tokens/s (median of ${runs.length})`,
)
