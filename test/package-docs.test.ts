// The docs as the npm package ships them: README.md's and docs/*.md's relative links lead to
// files the package holds (so they resolve in node_modules/ondevice, where no repository URL
// helps), to headings that exist; and the Worker project docs/worker.md shows a user has the
// settings `ondevice edge` itself writes for the published package (tools/wrangler-dev.ts). The
// same project built from the page and run under wrangler dev: test/consumers/consumers.test.ts.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { edgeWorkerConfigToml } from '../tools/wrangler-dev.ts'
import { parseToml, workerProjectFromDocs } from './consumers/worker-project-doc.ts'

const root = fileURLToPath(new URL('../', import.meta.url))
const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[] }
const markdownFiles = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
]

/** npm always packs these; the rest is what "files" lists (folders whole). */
function shipped(path: string): boolean {
  if (path === 'README.md' || path === 'package.json') return true
  return packageJson.files.some((entry) => path === entry || path.startsWith(`${entry}/`))
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>()
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const heading = fenced ? null : /^#{1,6} (.+)$/.exec(line)
    if (!heading) continue
    anchors.add(
      (heading[1] as string)
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/ /g, '-'),
    )
  }
  return anchors
}

describe('the docs in the package', () => {
  it('ships docs/ and README.md, and every relative link in them leads to a shipped file and an existing heading', () => {
    expect(packageJson.files).toContain('docs')
    const problems: string[] = []
    let checked = 0
    for (const file of markdownFiles) {
      const text = readFileSync(join(root, file), 'utf8').replace(/```[\s\S]*?```/g, '')
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (target === undefined || /^[a-z]+:/i.test(target)) continue
        const [path = '', anchor] = target.split('#')
        const resolved = path === '' ? file : normalize(relative(root, join(root, dirname(file), path)))
        checked += 1
        if (!existsSync(join(root, resolved))) problems.push(`${file}: ${target} (no ${resolved})`)
        else if (!shipped(resolved)) problems.push(`${file}: ${target} (${resolved} is not in the package)`)
        else if (anchor !== undefined && resolved.endsWith('.md')) {
          if (!anchorsOf(readFileSync(join(root, resolved), 'utf8')).has(anchor))
            problems.push(`${file}: ${target} (no heading #${anchor} in ${resolved})`)
        }
      }
    }
    expect(problems).toEqual([])
    expect(checked).toBeGreaterThan(20)
  })

  it("README's edge worker section points at the Worker project section", () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8')
    expect(readme.includes('](docs/worker.md#your-own-worker-project)'), 'README.md links to it').toBe(true)
  })
})

describe("docs/worker.md's own Worker project", () => {
  const project = workerProjectFromDocs()
  const documented = parseToml(project.wranglerToml)
  // What `ondevice edge` runs from the published package: the settings the Worker needs.
  const written = parseToml(edgeWorkerConfigToml('/app/node_modules/ondevice/dist/worker/index.js'))

  it('is ondevice/worker as the whole Worker, at the main wrangler.toml names', () => {
    expect(project.indexTs.trim()).toBe("export { default } from 'ondevice/worker'")
    expect(documented.root['main']).toBe('src/index.ts')
  })

  it('has the compatibility date, flags and the CompiledWasm rule that `ondevice edge` writes', () => {
    for (const key of ['compatibility_date', 'compatibility_flags'])
      expect(documented.root[key], key).toEqual(written.root[key])
    expect(documented.arrays['rules']).toEqual(written.arrays['rules'])
    // And the repository's own Worker has them too.
    const repository = readFileSync(join(root, 'wrangler.toml'), 'utf8')
    expect(repository).toContain(
      `compatibility_date = ${JSON.stringify(documented.root['compatibility_date'])}`,
    )
    for (const flag of documented.root['compatibility_flags'] as string[])
      expect(repository).toContain(`"${flag}"`)
  })

  it('reads the package from a URL, or from R2 with the variant shown', () => {
    expect(documented.tables['vars']).toMatchObject({
      MODEL_SOURCE: 'url',
      MODEL_URL: expect.stringMatching(/^https:\/\/.+\/$/),
      MODEL_REQUIRE_MANIFEST: 'true',
    })
    // No secret among the vars: keys go through `wrangler secret put`.
    expect(Object.keys(documented.tables['vars'] ?? {})).not.toContain('API_KEYS')
    const r2 = parseToml(project.r2Toml)
    expect(r2.root).toMatchObject({ MODEL_SOURCE: 'r2', MODEL_PREFIX: expect.stringMatching(/\/$/) })
    expect(r2.arrays['r2_buckets']).toEqual([{ binding: 'MODEL_BUCKET', bucket_name: expect.any(String) }])
  })
})
