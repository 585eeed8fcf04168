// Group 1, second table: our WASM backend (onnxruntime-web in Node) against our native backend
// (onnxruntime-node) on the same files, with the same thread count, plus native with its default
// threads for reference. Same loop, same sampler; only the ORT build differs.
import type { Backend } from '../../../client-runtime/dtype.ts'
import type { BenchContext } from '../support/context.ts'
import { type BenchEngine, followTokens, nodeOrt, openOursSession } from '../support/engines.ts'
import { ensurePackage, type PackageId, unavailableReason } from '../support/packages.ts'
import { promptOfLength } from '../support/prompts.ts'
import { formatNumber, formatRatio, median, type Table } from '../support/stats.ts'

export interface BackendRow {
  readonly packageId: PackageId
  readonly label: string
  readonly dtype: string
  readonly decodeTokens: number
  readonly rounds: number
  readonly engines: Record<string, { ttft128Ms: number[]; decodeTokensPerSecond: number[] }>
  readonly check: string
  readonly skipped?: string
}

const cases: readonly { id: PackageId; dtype: string }[] = [
  { id: 'stories260K', dtype: 'fp32' },
  { id: 'stories260K', dtype: 'q4' },
  { id: 'qwen3_5-tiny', dtype: 'fp32' },
  { id: 'qwen3_5-tiny', dtype: 'q4' },
  { id: 'qwen3_5-tiny', dtype: 'q8' },
  { id: 'qwen3-0.6b', dtype: 'q4' },
  { id: 'qwen3-0.6b', dtype: 'q8' },
  { id: 'qwen3_5-0.8b', dtype: 'q4' },
]

/** WASM threads are global to onnxruntime-web in a process; one thread keeps the comparison like for like. */
const wasmThreads = 1

const engineNames = ['wasm 1 thread', 'native 1 thread', 'native default threads'] as const

export async function backendComparison(
  context: BenchContext,
): Promise<{ rows: BackendRow[]; table: Table }> {
  const rows: BackendRow[] = []
  for (const { id, dtype } of cases) {
    if (context.packages && !context.packages.has(id)) continue
    const missing = unavailableReason(id)
    if (missing) {
      rows.push({
        packageId: id,
        label: id,
        dtype,
        decodeTokens: 0,
        rounds: 0,
        engines: {},
        check: 'not run',
        skipped: missing,
      })
      continue
    }
    const pkg = await ensurePackage(id, context.cacheFolder, context.log)
    context.log(`group 1 (backends): ${id} ${dtype}`)
    const rounds = context.quick || pkg.large ? 1 : 2
    const decodeTokens = context.quick ? 8 : pkg.large ? 16 : 64
    // 4-bit MatMulNBits on WASM dequantizes every weight matrix on every call: 5-30 s per token on
    // the full-size shapes, so those runs take 4 tokens and no warm-up (each call costs the same,
    // warm or not) to keep `npm run bench` within its time.
    const slowWasm = pkg.large && dtype === 'q4'
    const tokensFor = (name: string): number => (slowWasm && name.startsWith('wasm') ? 4 : decodeTokens)
    const opened: {
      name: string
      engine: BenchEngine & { session: import('../../../core/model-session.ts').ModelSession }
    }[] = []
    try {
      const open = async (name: string, backend: Backend, sessionOptions?: Record<string, unknown>) => {
        const engine = await openOursSession({
          folder: pkg.folder,
          dtype,
          backend,
          ort: await nodeOrt(backend, wasmThreads),
          label: name,
          ...(sessionOptions ? { sessionOptions } : {}),
        })
        opened.push({ name, engine })
      }
      await open('wasm 1 thread', 'wasm')
      await open('native 1 thread', 'native', { intraOpNumThreads: 1, interOpNumThreads: 1 })
      await open('native default threads', 'native')
      const tokenizer = (await import('../support/engines.ts')).folderTokenizer(pkg.folder)
      const prompt = promptOfLength(tokenizer, 128, pkg.bosTokenId)
      const engines: BackendRow['engines'] = {}
      const tokens = new Map<string, readonly number[]>()
      for (const { name, engine } of opened) {
        engines[name] = { ttft128Ms: [], decodeTokensPerSecond: [] }
        if (!(slowWasm && name.startsWith('wasm'))) await engine.run(prompt.slice(0, 16), 2)
      }
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? opened : [...opened].reverse()
        for (const { name, engine } of order) {
          const result = await engine.run(prompt, tokensFor(name))
          engines[name]?.ttft128Ms.push(result.ttftMs)
          engines[name]?.decodeTokensPerSecond.push(result.decodeTokensPerSecond)
          if (!tokens.has(name)) tokens.set(name, result.tokens)
        }
      }
      const wasmTokens = tokens.get('wasm 1 thread') ?? []
      const nativeTokens = tokens.get('native 1 thread') ?? []
      let check = `same (${wasmTokens.length} tokens)`
      // (The WASM run may be shorter: compare its tokens with the start of the native ones.)
      if (wasmTokens.some((token, index) => token !== nativeTokens[index])) {
        const native = opened.find((entry) => entry.name === 'native 1 thread')?.engine
        const follow = native ? await followTokens(native.session, prompt, wasmTokens) : undefined
        const split = wasmTokens.findIndex((token, index) => token !== nativeTokens[index])
        check =
          follow && follow.maxGap <= 1e-3
            ? `same up to near-ties (split at token ${split}, gap ≤ ${follow.maxGap.toExponential(1)})`
            : `DIFFERENT from token ${split}${follow ? ` (gap ${follow.maxGap.toFixed(3)})` : ''}`
      }
      rows.push({ packageId: id, label: pkg.label, dtype, decodeTokens, rounds, engines, check })
    } catch (error) {
      rows.push({
        packageId: id,
        label: pkg.label,
        dtype,
        decodeTokens,
        rounds,
        engines: {},
        check: `failed: ${(error as Error).message.split('\n')[0]}`,
      })
    } finally {
      for (const { engine } of opened) await engine.dispose()
    }
  }
  return { rows, table: backendTable(rows) }
}

function backendTable(rows: readonly BackendRow[]): Table {
  return {
    title:
      'Group 1b: ondevice WASM (onnxruntime-web in Node) vs ondevice native (onnxruntime-node), same files, greedy',
    columns: [
      'package',
      'dtype',
      ...engineNames.map((name) => `decode tok/s ${name}`),
      'WASM / native (1 thread)',
      ...engineNames.map((name) => `TTFT 128 ms ${name}`),
      'same tokens',
    ],
    rows: rows.map((row) => {
      if (row.skipped)
        return [
          row.label,
          row.dtype,
          ...engineNames.map(() => '—'),
          '—',
          ...engineNames.map(() => '—'),
          `not run: ${row.skipped}`,
        ]
      const decode = engineNames.map((name) => median(row.engines[name]?.decodeTokensPerSecond ?? []))
      const ttft = engineNames.map((name) => median(row.engines[name]?.ttft128Ms ?? []))
      return [
        row.label,
        row.dtype,
        ...decode.map((value) => formatNumber(value)),
        formatRatio((decode[0] as number) / (decode[1] as number)),
        ...ttft.map((value) => formatNumber(value)),
        row.check,
      ]
    }),
    notes: [
      `WASM runs with ${wasmThreads} thread (ORT's WASM settings are global per process); "native 1 thread" sets intraOpNumThreads = interOpNumThreads = 1; "native default threads" is ORT's default (one per core).`,
      'Decode over the answer to a 128-token prompt (16 tokens on the full-size shapes, 64 on small ones; 4 tokens and no warm-up for q4 on WASM at full size, where each step takes seconds); medians over rounds with alternating order. The ratio < 1 means WASM is slower.',
    ],
  }
}
