// Prints, as one JSON line, the SHA-256 of the WebAssembly engine's logit bytes for a fixed
// prompt (40 tokens, one prefill pass) and four single-token steps on a package folder, with the
// engine's build and dot forms. Run by wasm/engine/cross-arch.test.ts under Node for x64 and under
// an arm64 Node in qemu-user, so the two hosts' bytes can be compared; it imports only the
// engine's own modules (no npm packages), so a bare Node binary runs it:
//   node test/support/engine-logits-digest.ts FOLDER [--dot pairs,dot-add] [--threads 1,2]
//     [--simd relaxed|plain|auto]
// (one line per dot form and thread count, in that order). --simd: the build (default relaxed;
// auto: the host's own choice, as loadModel makes it). Each line also says which build ran,
// whether the host validates relaxed SIMD, and the greedy token of every logit row.
// wasm/engine/no-relaxed-host.test.ts runs it bundled under a Node without relaxed SIMD.
import { createHash } from 'node:crypto'
import type { DotFormRequest } from '../../wasm/engine/dot-form.ts'
import { folderWeightReader, loadEngineModule, nodeEngineThreads } from '../../wasm/engine/node.ts'
import { createEngineSession } from '../../wasm/engine/session.ts'
import { type EngineSimd, hostHasRelaxedSimd } from '../../wasm/engine/simd.ts'

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`)
  return index < 0 ? undefined : process.argv[index + 1]
}

const folder = process.argv[2]
if (folder === undefined || folder.startsWith('--'))
  throw new Error('usage: node test/support/engine-logits-digest.ts FOLDER [--dot F,F] [--threads N,N]')
const dots = (argument('dot') ?? 'auto').split(',') as DotFormRequest[]
const threadCounts = (argument('threads') ?? '1').split(',').map(Number)
const vocabulary = Number(argument('vocabulary') ?? 151_000)
const simdArgument = argument('simd') ?? 'relaxed'
if (!['relaxed', 'plain', 'auto'].includes(simdArgument))
  throw new Error(`--simd must be relaxed, plain or auto, got ${simdArgument}`)
const simd = simdArgument === 'auto' ? undefined : (simdArgument as EngineSimd)

/** The index of the largest logit (the first on a tie): the greedy token. */
function argmax(row: Float32Array): number {
  let best = 0
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i
  return best
}
const tokens = Array.from({ length: 44 }, (_, i) => (i * 7919 + 13) % vocabulary)

for (const dot of dots)
  for (const threads of threadCounts) {
    const threadPlan = await nodeEngineThreads(threads, simd)
    const session = await createEngineSession({
      module: await loadEngineModule(simd),
      files: folderWeightReader(folder),
      dtype: 'q4',
      dot,
      ...(threadPlan ? { threads: threadPlan } : {}),
    })
    try {
      const hash = createHash('sha256')
      const greedy: number[] = []
      const add = (row: Float32Array) => {
        hash.update(new Uint8Array(row.buffer, row.byteOffset, row.byteLength))
        greedy.push(argmax(row))
      }
      add(await session.append(tokens.slice(0, 40)))
      for (let i = 40; i < 44; i++) add(await session.append([tokens[i]!]))
      const { dot: forms, simd: build } = session.build
      console.log(
        JSON.stringify({
          arch: process.arch,
          node: process.version,
          relaxedSimd: hostHasRelaxedSimd(),
          simd: build,
          greedy,
          threads,
          prefill: forms?.prefill,
          decode: forms?.decode,
          chosenBy: forms?.chosenBy,
          digest: hash.digest('hex'),
        }),
      )
    } finally {
      await session.dispose()
    }
  }
