// The TypeScript sources the published package is built from: what `npm run build` compiles
// (tsconfig.build.json's include, less its exclude, plus every file those import), read without
// a build. Shared by the package.json checks (sideEffects, dependencies).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import ts from 'typescript'
import { repositoryRoot } from './consumer-project.ts'

const buildConfig = ts.readConfigFile(join(repositoryRoot, 'tsconfig.build.json'), ts.sys.readFile)
  .config as {
  include: string[]
  exclude: string[]
}

function sourcesUnder(folder: string): string[] {
  const found: string[] = []
  for (const entry of readdirSync(join(repositoryRoot, folder))) {
    const path = join(folder, entry)
    if (statSync(join(repositoryRoot, path)).isDirectory()) found.push(...sourcesUnder(path))
    else if (path.endsWith('.ts') && !path.endsWith('.test.ts') && !path.endsWith('.d.ts')) found.push(path)
  }
  return found
}

/** What `npm run build` compiles: tsconfig.build.json's include, less its exclude, plus what those import. */
export function shippedSources(): string[] {
  const excluded = new Set(buildConfig.exclude.filter((path) => path.endsWith('.ts')))
  const queue = buildConfig.include.flatMap((path) => (path.endsWith('.ts') ? [path] : sourcesUnder(path)))
  const seen = new Set<string>()
  while (queue.length > 0) {
    const file = queue.pop() as string
    if (seen.has(file) || excluded.has(file)) continue
    seen.add(file)
    const text = readFileSync(join(repositoryRoot, file), 'utf8')
    for (const [, specifier] of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.\.?\/[^'"]+\.ts)['"]/g)) {
      const target = normalize(join(dirname(file), specifier as string))
      if (existsSync(join(repositoryRoot, target)) && !target.endsWith('.test.ts')) queue.push(target)
    }
  }
  return [...seen].sort()
}
