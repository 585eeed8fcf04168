// Node-only: where Node's resolution would look for a package from a module's own folder. fs paths,
// not `import.meta.resolve` or `new URL(..., import.meta.url)`: a server bundle of an app
// (esbuild --platform=node, webpack's target 'node', Turbopack) rewrites or moves those, and
// leaves paths alone; `import.meta.url` is the one thing they keep (this file's, or the bundle's).
import { dirname, join } from 'node:path'

/** `node_modules/<path>` in `start` and in each folder above it, nearest first. */
export function* nodeModulesAbove(start: string, path: string): Generator<string> {
  for (let folder = start; ; folder = dirname(folder)) {
    yield join(folder, 'node_modules', path)
    if (dirname(folder) === folder) return
  }
}
