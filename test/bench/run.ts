// `npm run bench`: ondevice side by side with transformers.js and native ONNX Runtime on the same
// files. A script that prints markdown tables and writes bench-results/*.json; never a test.
//   npm run bench                      every group
//   npm run bench -- --group 1,3       some groups
//   npm run bench -- --quick           one round, short answers (checks the script, figures noisy)
//   npm run bench -- --packages stories260K,qwen3_5-tiny   only these packages
//   npm run bench -- --keep-packages   reuse built packages even if the builder changed since
//   npm run bench -- --group 2 --results-from bench-results/x.json   group 2 on an earlier run's group 1 rates
//   npm run bench -- --cache <folder>  where built packages live (default .cache/bench, or ONDEVICE_BENCH_CACHE)
//   npm run bench -- --group 7 --hosts chromium   group 7's Chromium rows only (node, chromium; default both)
// Packages are built on first use into the cache folder and reused while the builder is unchanged.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { type BenchContext, type BenchHost, benchHosts, type GroupResult } from './support/context.ts'
import { defaultCacheFolder, packageIds, repositoryRoot, setKeepPackages } from './support/packages.ts'
import { markdownTable } from './support/stats.ts'

interface GroupEntry {
  readonly title: string
  readonly run: (context: BenchContext) => Promise<GroupResult>
}

const groups: Record<number, GroupEntry> = {
  1: {
    title: 'ondevice vs transformers.js, and WASM vs native',
    run: async (context) => (await import('./groups/engine-comparison.ts')).engineComparison(context),
  },
  2: {
    title: 'bytes of weights per token vs measured memory bandwidth',
    run: async (context) => (await import('./groups/physical-limit.ts')).physicalLimit(context),
  },
  3: {
    title: 'per-decode-step overhead on stories260K',
    run: async (context) => (await import('./groups/step-overhead.ts')).stepOverhead(context),
  },
  4: {
    title: 'sampler and tokenizer (core benchmark)',
    run: async (context) => (await import('./groups/core-bench.ts')).coreBench(context),
  },
  5: {
    title: 'edge under load: wrangler dev and ondevice serve',
    run: async (context) => (await import('./groups/edge-load.ts')).edgeLoad(context),
  },
  6: {
    title: 'browser: headless Chromium WASM (1 and 2 threads) and WebGPU on SwiftShader',
    run: async (context) => (await import('./groups/browser.ts')).browserBench(context),
  },
  7: {
    title: 'the WebAssembly engine vs onnxruntime-web and onnxruntime-node',
    run: async (context) => (await import('./groups/wasm-engine.ts')).wasmEngine(context),
  },
  8: {
    title: "the container's engines: ondevice's WebAssembly engine vs onnxruntime-node (Docker)",
    run: async (context) => (await import('./groups/container-engines.ts')).containerEngines(context),
  },
  9: {
    title: "the WASM peer: ondevice's engine vs wllama (llama.cpp) in Chromium on GGUF exports",
    run: async (context) => (await import('./groups/wasm-peer.ts')).wasmPeer(context),
  },
}

function parseArguments(argv: readonly string[]): {
  groups: number[]
  quick: boolean
  cacheFolder: string
  help: boolean
  packages: Set<string> | undefined
  keepPackages: boolean
  resultsFrom: string[]
  hosts: Set<BenchHost> | undefined
} {
  let selected: number[] | undefined
  let packages: Set<string> | undefined
  let keepPackages = false
  let hosts: Set<BenchHost> | undefined
  const resultsFrom: string[] = []
  let quick = false
  let help = false
  let cacheFolder = defaultCacheFolder()
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index] as string
    const value = (): string => {
      const next = argv[++index]
      if (next === undefined) throw new Error(`${argument} needs a value.`)
      return next
    }
    if (argument === '--group' || argument === '-g') {
      selected = value()
        .split(',')
        .map((part) => Number(part.trim()))
      for (const group of selected)
        if (!(group in groups))
          throw new Error(`--group ${group}: groups are ${Object.keys(groups).join(', ')}.`)
    } else if (argument.startsWith('--group=')) {
      selected = argument.slice('--group='.length).split(',').map(Number)
    } else if (argument === '--quick') quick = true
    else if (argument === '--keep-packages') keepPackages = true
    else if (argument === '--results-from') resultsFrom.push(resolve(value()))
    else if (argument === '--cache') cacheFolder = resolve(value())
    else if (argument === '--packages') {
      packages = new Set(
        value()
          .split(',')
          .map((part) => part.trim()),
      )
      for (const id of packages)
        if (!(packageIds as readonly string[]).includes(id))
          throw new Error(`--packages ${id}: packages are ${packageIds.join(', ')}.`)
    } else if (argument === '--hosts') {
      hosts = new Set(
        value()
          .split(',')
          .map((part) => part.trim() as BenchHost),
      )
      for (const host of hosts)
        if (!benchHosts.includes(host))
          throw new Error(`--hosts ${host}: hosts are ${benchHosts.join(', ')}.`)
    } else if (argument === '--help' || argument === '-h') help = true
    else throw new Error(`Unknown option ${argument}; try --help.`)
  }
  return {
    groups: selected ?? Object.keys(groups).map(Number),
    quick,
    cacheFolder,
    help,
    packages,
    keepPackages,
    resultsFrom,
    hosts,
  }
}

async function main(): Promise<number> {
  const options = parseArguments(process.argv.slice(2))
  if (options.help) {
    console.log(
      [
        'npm run bench [-- --group N[,M]] [--quick] [--packages ID[,ID]] [--hosts node,chromium] [--keep-packages] [--results-from FILE.json] [--cache FOLDER]',
        `packages: ${packageIds.join(', ')}`,
        '',
        ...Object.entries(groups).map(([number, entry]) => `  group ${number}: ${entry.title}`),
      ].join('\n'),
    )
    return 0
  }
  const started = performance.now()
  const startedAt = new Date()
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryBytes: totalmem(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverageAtStart: loadavg(),
  }
  const log = (line: string): void => {
    process.stderr.write(
      `[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`,
    )
  }
  setKeepPackages(options.keepPackages)
  const context: BenchContext = {
    cacheFolder: options.cacheFolder,
    quick: options.quick,
    keepPackages: options.keepPackages,
    packages: options.packages,
    hosts: options.hosts,
    log,
    results: new Map(),
  }
  // Earlier runs' results (group 2 takes its decode rates from group 1) when this run skips them.
  for (const file of options.resultsFrom) {
    const earlier = JSON.parse(readFileSync(file, 'utf8')) as { groups: GroupResult[] }
    for (const result of earlier.groups)
      if (!options.groups.includes(result.group)) context.results.set(result.group, result)
  }
  const results: GroupResult[] = []
  // Wall time of each group, printed with the summary: `npm run bench` must fit in 20 minutes.
  const groupSeconds: Record<string, number> = {}
  for (const group of options.groups) {
    const entry = groups[group] as GroupEntry
    log(`group ${group}: ${entry.title}`)
    const groupStarted = performance.now()
    try {
      const result = await entry.run(context)
      context.results.set(group, result)
      results.push(result)
      for (const table of result.tables) console.log(markdownTable(table))
    } catch (error) {
      const message = `group ${group} failed: ${(error as Error).stack ?? String(error)}`
      log(message)
      const result: GroupResult = {
        group,
        title: entry.title,
        tables: [
          {
            title: `Group ${group}: ${entry.title}`,
            columns: ['status'],
            rows: [[`failed: ${(error as Error).message}`]],
          },
        ],
        data: { error: message },
      }
      results.push(result)
      console.log(markdownTable(result.tables[0] as never))
    }
    groupSeconds[group] = (performance.now() - groupStarted) / 1000
    log(`group ${group} took ${(groupSeconds[group] as number).toFixed(0)} s`)
  }
  const seconds = (performance.now() - started) / 1000
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
  const summary = `Ran \`${command}\` on ${startedAt.toISOString()} in ${seconds.toFixed(0)} s: ${machine.cores} × ${machine.cpu}, ${(machine.memoryBytes / 2 ** 30).toFixed(0)} GiB, Node ${machine.node}, load average ${machine.loadAverageAtStart.map((value) => value.toFixed(1)).join(' / ')} at start and ${loadavg()
    .map((value) => value.toFixed(1))
    .join(' / ')} at the end. Wall time per group: ${Object.entries(groupSeconds)
    .map(([group, value]) => `${group}: ${value.toFixed(0)} s`)
    .join(', ')}.`
  console.log(summary)
  const folder = join(repositoryRoot, 'bench-results')
  mkdirSync(folder, { recursive: true })
  // The process id keeps runs started in the same second apart.
  const stamp = `${startedAt
    .toISOString()
    .replaceAll(':', '-')
    .replace(/\.\d+Z$/, 'Z')}-${process.pid}`
  const json = {
    command,
    startedAt: startedAt.toISOString(),
    seconds,
    groupSeconds,
    machine: { ...machine, loadAverageAtEnd: loadavg() },
    quick: options.quick,
    groups: results.map(({ group, title, tables, data }) => ({ group, title, tables, data })),
  }
  const markdown = `${results.flatMap((result) => result.tables.map(markdownTable)).join('\n')}\n${summary}\n`
  writeFileSync(join(folder, `bench-${stamp}.json`), `${JSON.stringify(json, null, 2)}\n`)
  writeFileSync(join(folder, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`)
  writeFileSync(join(folder, 'latest.md'), markdown)
  log(`wrote ${join(folder, `bench-${stamp}.json`)} and latest.md`)
  return 0
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error)
    process.exit(1)
  },
)
