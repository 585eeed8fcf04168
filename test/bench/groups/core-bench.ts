// Group 4: the sampler and tokenizer figures from core's own benchmark (test/bench/core.bench.ts,
// `npm run bench:core`), run as a child process so its timings are not disturbed by the models
// this script holds; its lines are carried into the table as printed.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { BenchContext, GroupResult } from '../support/context.ts'

const run = promisify(execFile)

export async function coreBench(_context: BenchContext): Promise<GroupResult> {
  const title = 'Sampler and tokenizer (core benchmark)'
  const script = join(import.meta.dirname, '../core.bench.ts')
  if (!existsSync(script)) {
    return {
      group: 4,
      title,
      tables: [
        {
          title: `Group 4: ${title}`,
          columns: ['status'],
          rows: [['not run: test/bench/core.bench.ts has not landed']],
        },
      ],
      data: { skipped: 'core.bench.ts missing' },
    }
  }
  const { stdout } = await run(process.execPath, [script], { maxBuffer: 4 * 1024 * 1024, timeout: 600_000 })
  const lines = stdout.trim().split('\n')
  const number = (pattern: RegExp): number | undefined => {
    const match = pattern.exec(stdout)
    return match ? Number((match[1] as string).replaceAll(',', '')) : undefined
  }
  const data = {
    samplerMsPerStep: number(/ondevice Sampler[^:]*:\s*([\d.]+) ms/),
    referenceMsPerStep: number(/full-sort reference:\s*([\d.]+) ms/),
    tokenizerMegabytesPerSecond: number(/([\d.]+) MB\/s/),
    tokenizerTokensPerSecond: number(/MB\/s, ([\d,]+) tokens\/s/),
    output: lines,
  }
  return {
    group: 4,
    title,
    tables: [
      {
        title: `Group 4: ${title} (\`npm run bench:core\`, printed as is)`,
        columns: ['core.bench.ts output'],
        rows: lines.filter((line) => line.trim().length > 0).map((line) => [line.trim()]),
      },
    ],
    data,
  }
}
