// The Worker project docs/worker.md ("Your own Worker project") tells a user to write: its
// src/index.ts and wrangler.toml, read from the page itself, so the consumer test builds exactly
// what the page shows and test/package-docs.test.ts compares it with what `ondevice edge` writes.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const workerDoc = fileURLToPath(new URL('../../docs/worker.md', import.meta.url))
const heading = '## Your own Worker project'

export interface WorkerProjectDoc {
  /** The first `ts` block: the whole src/index.ts. */
  readonly indexTs: string
  /** The first `toml` block: the whole wrangler.toml (a package from a URL). */
  readonly wranglerToml: string
  /** The second `toml` block: what replaces MODEL_SOURCE and MODEL_URL for R2, the binding after. */
  readonly r2Toml: string
  /** The first `json` block: the whole tsconfig.json (with `wrangler types`' declarations). */
  readonly tsconfigJson: string
  /** The second `ts` block: a src/index.ts that wraps the handler with a route of its own. */
  readonly wrappedIndexTs: string
}

export function workerProjectFromDocs(): WorkerProjectDoc {
  const text = readFileSync(workerDoc, 'utf8')
  const start = text.indexOf(`\n${heading}\n`)
  if (start < 0) throw new Error(`docs/worker.md has no "${heading}" section.`)
  const end = text.indexOf('\n## ', start + heading.length + 2)
  const section = text.slice(start, end < 0 ? undefined : end)
  const blocks = [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map(([, language, body]) => ({
    language,
    body: body as string,
  }))
  const ts = blocks.filter((block) => block.language === 'ts')
  const toml = blocks.filter((block) => block.language === 'toml')
  const json = blocks.filter((block) => block.language === 'json')
  if (ts.length < 2 || toml.length < 2 || json.length < 1)
    throw new Error(
      `docs/worker.md "${heading}" should show src/index.ts and its wrapped variant (two ts blocks), wrangler.toml plus its R2 variant (two toml blocks) and tsconfig.json (a json block); found ${ts.length} ts, ${toml.length} toml and ${json.length} json.`,
    )
  return {
    indexTs: (ts[0] as { body: string }).body,
    wranglerToml: (toml[0] as { body: string }).body,
    r2Toml: (toml[1] as { body: string }).body,
    tsconfigJson: (json[0] as { body: string }).body,
    wrappedIndexTs: (ts[1] as { body: string }).body,
  }
}

export type TomlValue = string | number | boolean | readonly TomlValue[]
export type TomlTable = Record<string, TomlValue>
/** Top-level keys, `[table]`s and `[[array of tables]]`s. */
export interface TomlDocument {
  readonly root: TomlTable
  readonly tables: Record<string, TomlTable>
  readonly arrays: Record<string, TomlTable[]>
}

/**
 * The part of TOML wrangler.toml files use here: comments, `[table]`, `[[array]]` and
 * `key = value` whose value is a basic string, a number, a boolean or an array of them (each
 * written as JSON writes it). Anything else is an error rather than a silent misreading.
 */
export function parseToml(text: string): TomlDocument {
  const document: TomlDocument = { root: {}, tables: {}, arrays: {} }
  let current: TomlTable = document.root
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const arrayTable = /^\[\[([\w.]+)\]\]$/.exec(line)
    const table = /^\[([\w.]+)\]$/.exec(line)
    if (arrayTable) {
      const name = arrayTable[1] as string
      current = {}
      document.arrays[name] = [...(document.arrays[name] ?? []), current]
    } else if (table) {
      const name = table[1] as string
      current = document.tables[name] ?? {}
      document.tables[name] = current
    } else {
      const pair = /^([\w-]+)\s*=\s*(.+)$/.exec(line)
      if (!pair) throw new Error(`line ${index + 1}: not a key = value line: ${raw}`)
      try {
        current[pair[1] as string] = JSON.parse(pair[2] as string) as TomlValue
      } catch {
        throw new Error(`line ${index + 1}: a value this reader does not take: ${raw}`)
      }
    }
  }
  return document
}
