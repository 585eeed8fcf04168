// Shared option parsing for the builder's CLI commands (fixture, convert): dtype lists and a progress
// bar on stderr that never mixes with what the command prints on stdout.
import { InvalidArgumentError } from '../core/errors.ts'
import { type BuilderDtype, builderDtypes } from './architectures/decoder-graph.ts'

/** `--dtype q4 --dtype q8` or `--dtype q4,q8`. */
export function parseDtypes(
  values: readonly string[] | undefined,
  fallback: readonly BuilderDtype[],
): BuilderDtype[] {
  if (!values || values.length === 0) return [...fallback]
  const dtypes = values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '')
  for (const dtype of dtypes)
    if (!(builderDtypes as readonly string[]).includes(dtype))
      throw new InvalidArgumentError(
        '--dtype',
        `Unknown dtype "${dtype}": use ${builderDtypes.join(', ')} (comma-separated or repeated).`,
      )
  return [...new Set(dtypes as BuilderDtype[])]
}

/** A one-line progress bar on stderr (plain lines when stderr is not a terminal). */
export function progressBar(label: string): (event: { step: string; done: number; total: number }) => void {
  const started = Date.now()
  return ({ step, done, total }) => {
    const width = 24
    const filled = Math.round((done / Math.max(1, total)) * width)
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    const line = `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} ${step} (${seconds}s)`
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${line}${done === total ? '\n' : ''}`)
    else process.stderr.write(`${line}\n`)
  }
}

export function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${bytes} B`
}
