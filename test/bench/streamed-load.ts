// `npm run bench:streamed-load`: how long the engine takes to load a package over HTTP at the edge
// when it streams its weights (verified ranged reads straight into linear memory:
// worker/verified-ranges.ts) against the whole-file reader (each weight file read whole and
// verified, then copied), and how much memory each holds while it loads. The package is served
// on 127.0.0.1 (demo/static-server.ts: Range, keep-alive) and read through the edge's own `url`
// source (urlPackageReader + verifyPackage), as `MODEL_SOURCE=url` does in Node. Each load runs
// in a fresh Node process (its peak resident memory is its own), the readers alternating, and
// the engine reading the folder from disk is the floor. A script that prints a table; never a test.
//   npm run bench:streamed-load                                  Qwen3.5-0.8B q4 (npm run bench's package cache)
//   npm run bench:streamed-load -- --package qwen3-0.6b          another of the bench's packages
//   npm run bench:streamed-load -- --folder DIR --dtype q8       any package folder
//   npm run bench:streamed-load -- --rounds 3 --readers whole,streamed
//   npm run bench:streamed-load -- --rounds 1 --profile DIR      a CPU profile of each load in DIR
//   npm run bench:streamed-load -- --before DIR --readers whole,streamed,streamed-before
//       the streamed load of another checkout too (DIR: its root, with this script copied in)
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { defaultCacheFolder, ensurePackage, type PackageId } from './support/packages.ts'
import { markdownTable, median } from './support/stats.ts'

type ReaderKind = 'whole' | 'streamed' | 'disk' | 'streamed-before'
const readerKinds: readonly ReaderKind[] = ['whole', 'streamed', 'disk', 'streamed-before']

interface LoadResult {
  readonly reader: ReaderKind
  readonly loadMs: number
  /** VmHWM above the resident size just before the load. */
  readonly peakAddedBytes: number
  /** VmHWM above the resident size once loaded (after a collection): what the load held on top of the model. */
  readonly transientBytes: number
  /** Largest sampled process.memoryUsage().arrayBuffers while loading. */
  readonly peakArrayBuffers: number
  readonly requests: number
  readonly bytesServed: number
}

const child = process.argv[2] === '--child'
if (child) await runChild(JSON.parse(process.argv[3] as string))
else await runParent()

async function runChild(request: { reader: ReaderKind; url: string; folder: string; dtype: string }) {
  if (request.reader === 'streamed-before') request.reader = 'streamed'
  const { loadEngineModule, folderWeightReader } = await import('../../wasm/engine/node.ts')
  const { packageWeightReader } = await import('../../wasm/engine/package-files.ts')
  const { createEngineSession } = await import('../../wasm/engine/session.ts')
  const { urlPackageReader, verifyPackage } = await import('../../worker/package-sources.ts')
  const module = await loadEngineModule()
  const status = () => {
    const text = readFileSync('/proc/self/status', 'utf8')
    const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(text)?.[1]) * 1024
    return { rss: field('VmRSS'), peak: field('VmHWM') }
  }
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  writeFileSync('/proc/self/clear_refs', '5')
  const before = status().rss
  let peakArrayBuffers = 0
  const sampler = setInterval(() => {
    peakArrayBuffers = Math.max(peakArrayBuffers, process.memoryUsage().arrayBuffers)
  }, 50)
  const started = performance.now()
  let files: Parameters<typeof createEngineSession>[0]['files']
  if (request.reader === 'disk') files = folderWeightReader(request.folder)
  else {
    const verified = await verifyPackage(urlPackageReader(request.url), { source: request.url })
    const reader = verified.reader
    files =
      request.reader === 'streamed'
        ? packageWeightReader(reader)
        : // The reader before streaming: whole verified files, held while the model loads.
          packageWeightReader({
            readBytes: (path) => reader.readBytes(path),
            ...(reader.exists ? { exists: (path: string) => reader.exists!(path) } : {}),
          })
  }
  const session = await createEngineSession({ module, files, dtype: request.dtype })
  const loadMs = performance.now() - started
  clearInterval(sampler)
  peakArrayBuffers = Math.max(peakArrayBuffers, process.memoryUsage().arrayBuffers)
  gc?.()
  const after = status()
  await session.dispose()
  const result: Omit<LoadResult, 'requests' | 'bytesServed'> = {
    reader: request.reader,
    loadMs,
    peakAddedBytes: after.peak - before,
    transientBytes: after.peak - after.rss,
    peakArrayBuffers,
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

async function runParent() {
  const { values } = parseArgs({
    options: {
      package: { type: 'string', default: 'qwen3_5-0.8b' },
      folder: { type: 'string' },
      cache: { type: 'string' },
      dtype: { type: 'string', default: 'q4' },
      rounds: { type: 'string', default: '3' },
      readers: { type: 'string', default: 'whole,streamed,disk' },
      profile: { type: 'string' },
      before: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    console.log(
      'npm run bench:streamed-load [-- --package ID | --folder DIR] [--cache DIR] [--dtype q4] [--rounds N] [--readers whole,streamed,disk,streamed-before] [--profile DIR] [--before DIR]',
    )
    return
  }
  if (process.platform !== 'linux') throw new Error('This reads /proc: Linux only.')
  const rounds = Number(values.rounds)
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer')
  const readers = values.readers.split(',').map((name) => name.trim()) as ReaderKind[]
  for (const name of readers)
    if (!readerKinds.includes(name)) throw new Error(`--readers takes ${readerKinds.join(', ')}, not ${name}`)
  if (readers.includes('streamed-before') && !values.before)
    throw new Error('streamed-before needs --before DIR: a checkout of the repository to compare with')
  const folder = values.folder
    ? resolve(values.folder)
    : (
        await ensurePackage(
          values.package as PackageId,
          values.cache ? resolve(values.cache) : defaultCacheFolder(),
          (line) => console.error(line),
          // Any complete build will do: this measures reading the files, not what the builder writes.
          true,
        )
      ).folder
  const { startStaticServer } = await import('../../demo/static-server.ts')
  const server = await startStaticServer({ mounts: [{ prefix: '/', directory: folder }] })
  const script = fileURLToPath(import.meta.url)
  const results = new Map<ReaderKind, LoadResult[]>(readers.map((name) => [name, []]))
  const startLoad = loadavg()[0]?.toFixed(1)
  const started = performance.now()
  try {
    for (let round = 0; round < rounds; round++) {
      // Alternating order, so a machine that gets busier favours no reader.
      const order = round % 2 === 0 ? readers : [...readers].reverse()
      for (const reader of order) {
        server.clearRequests()
        const output = await runNode([
          '--conditions=ondevice-source',
          '--expose-gc',
          ...(values.profile ? ['--cpu-prof', `--cpu-prof-dir=${resolve(values.profile)}`] : []),
          reader === 'streamed-before'
            ? join(resolve(values.before as string), 'test/bench/streamed-load.ts')
            : script,
          '--child',
          JSON.stringify({ reader, url: `${server.url}/`, folder, dtype: values.dtype }),
        ])
        const line = output.trim().split('\n').at(-1) as string
        const partial = JSON.parse(line) as Omit<LoadResult, 'requests' | 'bytesServed'>
        const served = server.requests.filter((entry) => entry.path.includes('.onnx_data'))
        const result: LoadResult = {
          ...partial,
          requests: served.length,
          bytesServed: served.reduce((sum, entry) => sum + entry.bytes, 0),
        }
        results.get(reader)!.push(result)
        console.error(
          `round ${round + 1} ${reader}: ${result.loadMs.toFixed(0)} ms, peak +${mib(result.peakAddedBytes)}, transient ${mib(result.transientBytes)}, ${result.requests} weight requests`,
        )
      }
    }
  } finally {
    await server.close()
  }
  const whole = median((results.get('whole') ?? []).map((entry) => entry.loadMs))
  const rows = readers.map((reader) => {
    const list = results.get(reader)!
    const ms = median(list.map((entry) => entry.loadMs))
    return [
      reader,
      `${ms.toFixed(0)} ms`,
      Number.isFinite(whole) ? `${(ms / whole).toFixed(2)}×` : '—',
      mib(median(list.map((entry) => entry.peakAddedBytes))),
      mib(median(list.map((entry) => entry.transientBytes))),
      mib(median(list.map((entry) => entry.peakArrayBuffers))),
      reader === 'disk' ? '—' : String(list[0]?.requests ?? 0),
      reader === 'disk' ? '—' : mib(list[0]?.bytesServed ?? 0),
    ]
  })
  console.log(
    markdownTable({
      title: `Engine load of ${folder} (${values.dtype}) over local HTTP: streamed against whole files (${rounds} rounds, medians)`,
      columns: [
        'reader',
        'load',
        'vs whole',
        'peak RSS added',
        'peak above loaded',
        'peak ArrayBuffers',
        'weight-file requests',
        'weight bytes served',
      ],
      rows,
      notes: [
        `whole: each weight file read whole over HTTP and verified (SHA-256), held while the model loads; streamed: worker/verified-ranges.ts; disk: the engine reading the folder (no HTTP, no verification), the floor${values.before ? `; streamed-before: the streamed load of ${values.before}` : ''}`,
        'peak RSS added: VmHWM above the resident size before the load; peak above loaded: VmHWM above the resident size once loaded (after a collection), what the load held on top of the model',
        `${((performance.now() - started) / 1000).toFixed(0)} s, load average ${startLoad} at the start, ${loadavg()[0]?.toFixed(1)} at the end`,
      ],
    }),
  )
}

/** A Node child (the server stays on this process's event loop meanwhile); its stdout. */
function runNode(args: readonly string[]): Promise<string> {
  return new Promise((done, fail) => {
    const started = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
    })
    let output = ''
    started.stdout.setEncoding('utf8').on('data', (text: string) => {
      output += text
    })
    started.on('error', fail)
    started.on('close', (code) =>
      code === 0 ? done(output) : fail(new Error(`a load exited with ${code}: ${output.slice(-2000)}`)),
    )
  })
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`
}
