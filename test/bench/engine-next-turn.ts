// A chat's second turn on the engine: its time to first token when the generation loop resumes
// it as it did before (at the previous answer's turn boundary, where a cold run cuts the prompt)
// and as it does now (after the previous answer: the engine's logits do not depend on the
// chunking, `info.splitInvariant`). One session, the two ways taking turns (the order swapped
// every round), so the load of other processes falls on both alike and only the ratio is read.
// Turn 2 is what a template that renders the answer back as generated sends: turn 1's prompt, the
// answer's tokens, `<|im_end|>` and a new user turn. Checks that both ways give the same logit
// bytes for turn 2's first token every round. A diagnostic script, not part of `npm run bench`:
//
//   npx node test/bench/engine-next-turn.ts [--package qwen3_5-0.8b] [--dtype q4] [--answer 200]
//     [--rounds 3] [--threads 1] [--cache FOLDER]
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { encodeChatTurns } from '../../core/chat-turns.ts'
import { generateText } from '../../core/generate.ts'
import type { ModelSession } from '../../core/model-session.ts'
import { folderWeightReader, loadEngineModule, nodeEngineThreads } from '../../wasm/engine/node.ts'
import { createEngineSession } from '../../wasm/engine/session.ts'
import { folderTokenizer } from './support/engines.ts'
import { defaultCacheFolder, ensurePackage, type PackageId } from './support/packages.ts'
import { median } from './support/stats.ts'

const { values } = parseArgs({
  options: {
    package: { type: 'string', default: 'qwen3_5-0.8b' },
    dtype: { type: 'string', default: 'q4' },
    answer: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1' },
    cache: { type: 'string' },
  },
})
const answerTokens = Number(values.answer)
const rounds = Number(values.rounds)
const threads = Number(values.threads)

const pkg = await ensurePackage(
  values.package as PackageId,
  values.cache ?? defaultCacheFolder(),
  console.log,
  true,
)
const tokenizer = folderTokenizer(pkg.folder)
const threadSetup = await nodeEngineThreads(threads)
const session = await createEngineSession({
  module: await loadEngineModule(),
  files: folderWeightReader(pkg.folder),
  dtype: values.dtype,
  ...(threadSetup ? { threads: threadSetup } : {}),
})
/** The same session as the loop saw it before: resumed only where a cold run cuts the prompt. */
const asBefore: ModelSession = {
  info: { ...session.info, splitInvariant: false },
  get tokens() {
    return session.tokens
  },
  append: (ids, options) => session.append(ids, options),
  rewind: (length) => session.rewind(length),
  reset: () => session.reset(),
  dispose: () => session.dispose(),
}

const system = `You are a careful assistant. ${'Answer in plain words, give reasons, and keep to the facts you are sure of. '.repeat(10)}`
const question =
  'Tell me about the history of lighthouses, their keepers, the lamps and lenses they used, and how ships found their way before them. '.repeat(
    2,
  )
const first = encodeChatTurns(tokenizer, [
  { role: 'system', content: system },
  { role: 'user', content: question },
])
const closing = tokenizer.encode(
  '<|im_end|>\n<|im_start|>user\nAnd what about the keepers themselves: who were they, and how did they live?<|im_end|>\n<|im_start|>assistant\n',
  { addSpecialTokens: false },
)
const turnStart = closing[2] as number

const ttft = { before: [] as number[], after: [] as number[] }
const fed = { before: 0, after: 0 }
let secondPrompt = 0
for (let round = 0; round < rounds; round++) {
  const firstLogits = new Map<string, Buffer>()
  for (const way of round % 2 === 0 ? (['before', 'after'] as const) : (['after', 'before'] as const)) {
    const target = way === 'before' ? asBefore : session
    await session.reset()
    const answer = await generateText(target, tokenizer, {
      promptTokenIds: first.tokenIds,
      promptBoundaries: first.turnBoundaries,
      maxTokens: answerTokens,
      sampling: { temperature: 0 },
    })
    const prompt = [...first.tokenIds, ...answer.tokenIds, ...closing]
    const boundaries = [...first.turnBoundaries]
    for (let i = first.tokenIds.length + answer.tokenIds.length; i < prompt.length; i++)
      if (prompt[i] === turnStart) boundaries.push(i)
    // The first token's logits: those of the append that ends the prompt.
    let last: Float32Array | undefined
    const watched: ModelSession = {
      get info() {
        return target.info
      },
      get tokens() {
        return target.tokens
      },
      append: async (ids, options) => {
        const logits = await target.append(ids, options)
        if (target.tokens.length === prompt.length) last = logits.slice()
        return logits
      },
      rewind: (length) => target.rewind(length),
      ...(target === session ? { rewindableLength: (limit: number) => session.rewindableLength(limit) } : {}),
      reset: () => target.reset(),
      dispose: () => target.dispose(),
    }
    const started = performance.now()
    const second = await generateText(watched, tokenizer, {
      promptTokenIds: prompt,
      promptBoundaries: boundaries,
      maxTokens: 1,
      sampling: { temperature: 0 },
    })
    ttft[way].push(performance.now() - started)
    fed[way] = prompt.length - (second.usage.cachedTokens ?? 0)
    secondPrompt = prompt.length
    if (last) firstLogits.set(way, Buffer.from(last.buffer, last.byteOffset, last.byteLength))
  }
  if (!firstLogits.get('before')?.equals(firstLogits.get('after') ?? Buffer.alloc(0)))
    throw new Error(`round ${round}: turn 2's first logits differ between the two resume points`)
}
await session.dispose()
console.log(
  `${pkg.label} ${values.dtype}, ${threads} thread(s), ${rounds} rounds (load average ${loadavg()[0]?.toFixed(1)}): turn 1 prompt ${first.tokenIds.length} tokens, answer ${answerTokens}; turn 2 prompt ${secondPrompt}; first logits identical\n` +
    `before: ${fed.before} tokens fed, TTFT ${median(ttft.before).toFixed(0)} ms\n` +
    `after: ${fed.after} tokens fed, TTFT ${median(ttft.after).toFixed(0)} ms\n` +
    `turn 2 TTFT before / after: ${(median(ttft.before) / median(ttft.after)).toFixed(2)}x`,
)
process.exit(0)
