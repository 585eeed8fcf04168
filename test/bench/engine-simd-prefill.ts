// The engine's two builds on one package in one process: engine.wasm (SIMD128) and
// engine-relaxed.wasm (relaxed SIMD, src/gemm-q4-relaxed.c) each load a session, then take turns
// prefilling the same prompt and running `--decode` single-token steps after an 8-token prompt
// (the order swapped every round), so the load of other processes falls on both alike and only
// the ratio is read. Checks that the two give the same logit bytes every round. A diagnostic
// script, not part of `npm run bench`:
//
//   npx node test/bench/engine-simd-prefill.ts [--package qwen3_5-0.8b] [--dtype q4] [--prompt 512]
//     [--decode 24] [--rounds 3] [--threads 1] [--cache FOLDER]
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { folderWeightReader, loadEngineModule, nodeEngineThreads } from '../../wasm/engine/node.ts'
import { createEngineSession, type EngineSession } from '../../wasm/engine/session.ts'
import type { EngineSimd } from '../../wasm/engine/simd.ts'
import { folderTokenizer } from './support/engines.ts'
import { defaultCacheFolder, ensurePackage, type PackageId } from './support/packages.ts'
import { promptOfLength } from './support/prompts.ts'
import { median } from './support/stats.ts'

const { values } = parseArgs({
  options: {
    package: { type: 'string', default: 'qwen3_5-0.8b' },
    dtype: { type: 'string', default: 'q4' },
    prompt: { type: 'string', default: '512' },
    rounds: { type: 'string', default: '3' },
    decode: { type: 'string', default: '24' },
    threads: { type: 'string', default: '1' },
    cache: { type: 'string' },
  },
})
const promptLength = Number(values.prompt)
const rounds = Number(values.rounds)
const threads = Number(values.threads)
const decodeSteps = Number(values.decode)

/** Milliseconds of CPU time of this thread. */
function cpu(): number {
  const usage = process.threadCpuUsage()
  return (usage.user + usage.system) / 1000
}

const pkg = await ensurePackage(
  values.package as PackageId,
  values.cache ?? defaultCacheFolder(),
  console.log,
  true,
)
const prompt = promptOfLength(folderTokenizer(pkg.folder), promptLength, pkg.bosTokenId)
const builds: readonly EngineSimd[] = ['plain', 'relaxed']
const sessions = new Map<EngineSimd, EngineSession>()
for (const simd of builds) {
  const threadSetup = await nodeEngineThreads(threads, simd)
  sessions.set(
    simd,
    await createEngineSession({
      module: await loadEngineModule(simd),
      files: folderWeightReader(pkg.folder),
      dtype: values.dtype,
      ...(threadSetup ? { threads: threadSetup } : {}),
    }),
  )
}
const wall = new Map<EngineSimd, number[]>(builds.map((simd) => [simd, []]))
const cpuTime = new Map<EngineSimd, number[]>(builds.map((simd) => [simd, []]))
const decodeRate = new Map<EngineSimd, number[]>(builds.map((simd) => [simd, []]))
for (let round = 0; round < rounds; round++) {
  const logits = new Map<EngineSimd, Buffer>()
  for (const simd of round % 2 === 0 ? builds : [...builds].reverse()) {
    const session = sessions.get(simd)!
    await session.reset()
    const startedCpu = cpu()
    const started = performance.now()
    const row = await session.append(prompt)
    wall.get(simd)!.push(performance.now() - started)
    cpuTime.get(simd)!.push(cpu() - startedCpu)
    const rows = [Buffer.from(row.buffer, row.byteOffset, row.byteLength)]
    if (decodeSteps > 0) {
      await session.reset()
      await session.append(prompt.slice(0, 8))
      const decodeStarted = performance.now()
      for (let step = 0; step < decodeSteps; step++) {
        const next = await session.append([prompt[8 + step]!])
        rows.push(Buffer.from(next.buffer, next.byteOffset, next.byteLength))
      }
      decodeRate.get(simd)!.push(decodeSteps / ((performance.now() - decodeStarted) / 1000))
    }
    logits.set(simd, Buffer.concat(rows))
  }
  if (!logits.get('plain')!.equals(logits.get('relaxed')!))
    throw new Error(`round ${round}: the two builds' logits differ`)
}
for (const session of sessions.values()) await session.dispose()
const line = (simd: EngineSimd) =>
  `${simd}: prefill wall ${median(wall.get(simd)!).toFixed(0)} ms, main thread CPU ${median(cpuTime.get(simd)!).toFixed(0)} ms` +
  (decodeSteps > 0 ? `; decode ${median(decodeRate.get(simd)!).toFixed(2)} tok/s` : '')
console.log(
  `${pkg.label} ${values.dtype}, ${promptLength}-token prefill, ${threads} thread(s), ${rounds} rounds (load average ${loadavg()[0]!.toFixed(1)}); logits identical\n` +
    `${line('plain')}\n${line('relaxed')}\n` +
    `relaxed / plain speed: prefill wall ${(median(wall.get('plain')!) / median(wall.get('relaxed')!)).toFixed(2)}x, CPU ${(median(cpuTime.get('plain')!) / median(cpuTime.get('relaxed')!)).toFixed(2)}x` +
    (decodeSteps > 0
      ? `; decode ${(median(decodeRate.get('relaxed')!) / median(decodeRate.get('plain')!)).toFixed(2)}x`
      : ''),
)
