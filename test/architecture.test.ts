// The one-way arrows of docs/architecture.md, checked: every import of every shipped source file
// (static imports, `export ... from`, `import type`, `typeof import('...')`, and dynamic
// `import('...')`) is parsed with the TypeScript parser and resolved to the folder it lands in.
// A shipped file may not import test/, demo/ or tools/; client-runtime/ may not import builder/;
// core/ may not import anything platform-specific; and no shipped file may import a module whose
// name is computed at run time (it hides an arrow from bundlers and from this check alike).
// Unit tests beside the code (*.test.ts) are not shipped code and may import test helpers.
import { readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../', import.meta.url))

/** What each shipped folder may import among the repository's folders (docs/architecture.md). */
const allowedFolders: Readonly<Record<string, readonly string[]>> = {
  core: [],
  wasm: ['core'],
  'client-runtime': ['core', 'wasm'],
  worker: ['core', 'wasm', 'client-runtime'],
  sdk: ['core', 'client-runtime'],
  builder: ['core'],
  cli: ['core', 'wasm', 'client-runtime', 'worker', 'sdk', 'builder'],
}

/** Arrows outside the table, each with the reason it exists. Keep this list short. */
const allowedEdges: readonly { from: string; to: string; why: string }[] = [
  {
    from: 'sdk/node-device.ts',
    to: 'builder/default-package.ts',
    why: "the embedded default package in Node; reached only through '#node-device-host' under the node condition",
  },
  {
    from: 'cli/commands/edge.ts',
    to: 'demo/edge-worker.ts',
    why: '`ondevice edge` starts wrangler dev (a devDependency) through the demo launcher',
  },
  {
    from: 'cli/commands/edge.ts',
    to: 'demo/static-server.ts',
    why: '`ondevice edge` serves the package folder to wrangler dev with the demo static server',
  },
  {
    from: 'cli/commands/edge.ts',
    to: 'tools/wrangler-dev.ts',
    why: "`ondevice edge` checks the port is free and which wrangler the app has before it starts (the launcher's own file)",
  },
  {
    from: 'cli/commands/edge.ts',
    to: 'tools/docker/edge-container.ts',
    why: '`ondevice edge` builds and starts the local container for packages over the isolate budget',
  },
  {
    from: 'cli/bin.js',
    to: 'dist/cli/main.js',
    why: 'the published command runs the built CLI (the sources are not in the package)',
  },
]

/** Package names core may never import: each ties it to one platform. */
function isPlatformSpecific(specifier: string): boolean {
  const name = specifier.startsWith('node:') ? specifier : specifier.split('/')[0]
  return (
    specifier.startsWith('node:') ||
    specifier.startsWith('cloudflare:') ||
    builtinModules.includes(name ?? '') ||
    /^onnxruntime-/.test(specifier) ||
    specifier.startsWith('@cloudflare/') ||
    specifier === 'wrangler' ||
    specifier.startsWith('@hono/node-server')
  )
}

interface ImportFound {
  readonly specifier: string | undefined
  readonly line: number
  readonly kind: 'static' | 'dynamic' | 'type'
  /** The source text of a dynamic import's argument when it is not a string literal. */
  readonly computed?: string
}

/** Every import in a source text, with the TypeScript parser (comments and strings are never mistaken for imports). */
function findImports(fileName: string, text: string): ImportFound[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true)
  const found: ImportFound[] = []
  const lineOf = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push({ specifier: node.moduleSpecifier.text, line: lineOf(node), kind: 'static' })
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const expression = node.moduleReference.expression
      found.push({
        specifier: ts.isStringLiteral(expression) ? expression.text : undefined,
        line: lineOf(node),
        kind: 'static',
      })
    } else if (ts.isImportTypeNode(node)) {
      const argument = node.argument
      if (ts.isLiteralTypeNode(argument) && ts.isStringLiteral(argument.literal)) {
        found.push({ specifier: argument.literal.text, line: lineOf(node), kind: 'type' })
      }
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const argument = node.arguments[0]
      if (argument && ts.isStringLiteralLike(argument)) {
        found.push({ specifier: argument.text, line: lineOf(node), kind: 'dynamic' })
      } else {
        found.push({
          specifier: undefined,
          line: lineOf(node),
          kind: 'dynamic',
          computed: argument ? argument.getText(source) : '(no argument)',
        })
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  imports?: Record<string, ConditionalTarget>
}

/** A package.json target: a path, or conditions (nested, like 'ondevice-source') mapping to targets. */
type ConditionalTarget = string | { readonly [condition: string]: ConditionalTarget }

function flattenTargets(entry: ConditionalTarget): string[] {
  return typeof entry === 'string' ? [entry] : Object.values(entry).flatMap(flattenTargets)
}

/** Repository-relative paths a specifier can resolve to ('#' imports: every condition's target), or none for a package. */
function targetsOf(file: string, specifier: string): string[] {
  if (specifier.startsWith('.')) return [relative(root, resolve(dirname(join(root, file)), specifier))]
  if (specifier.startsWith('#')) {
    const entry = packageJson.imports?.[specifier]
    if (entry === undefined) throw new Error(`${file}: ${specifier} is not in package.json "imports"`)
    // The repository's own sources are what the arrows are about; dist/ is their build.
    const targets = flattenTargets(entry).filter((target) => !target.startsWith('./dist/'))
    return targets.map((target) => relative(root, resolve(root, target)))
  }
  return []
}

const toPosix = (path: string) => path.split(sep).join('/')

function sourceFiles(folder: string): string[] {
  const files: string[] = []
  const walk = (directory: string): void => {
    for (const entry of readdirSync(join(root, directory), { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name === 'dist') continue
      const path = join(directory, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (/\.(m?ts|m?js)$/.test(entry.name) && !/\.test\.ts$/.test(entry.name)) files.push(toPosix(path))
    }
  }
  walk(folder)
  return files
}

interface Violation {
  readonly file: string
  readonly line: number
  readonly problem: string
}

function checkRepository(): { files: number; imports: number; violations: Violation[] } {
  const violations: Violation[] = []
  let files = 0
  let imports = 0
  for (const [folder, allowed] of Object.entries(allowedFolders)) {
    for (const file of sourceFiles(folder)) {
      files++
      for (const found of findImports(file, readFileSync(join(root, file), 'utf8'))) {
        imports++
        if (found.specifier === undefined) {
          violations.push({
            file,
            line: found.line,
            problem: `imports a computed module name (${found.computed}): name the module with a string literal (a Node-only one through a package.json "imports" condition, like '#runtime-node')`,
          })
          continue
        }
        if (folder === 'core' && isPlatformSpecific(found.specifier)) {
          violations.push({
            file,
            line: found.line,
            problem: `imports '${found.specifier}': core/ runs on every host and imports nothing platform-specific`,
          })
        }
        for (const target of targetsOf(file, found.specifier).map(toPosix)) {
          const targetFolder = target.split('/')[0] ?? ''
          if (targetFolder === folder || target.startsWith('..')) continue
          if (targetFolder === 'node_modules') continue
          if (allowed.includes(targetFolder)) continue
          if (allowedEdges.some((edge) => edge.from === file && edge.to === target)) continue
          const rule =
            targetFolder === 'test'
              ? 'test code stays under test/ and is never imported by shipped code'
              : folder === 'client-runtime' && targetFolder === 'builder'
                ? 'the runtime takes a package folder; writing packages is the builder’s job'
                : `${folder}/ may import ${allowed.length > 0 ? allowed.join(', ') : 'no other folder'} (docs/architecture.md)`
          violations.push({ file, line: found.line, problem: `imports ${target}: ${rule}` })
        }
      }
    }
  }
  return { files, imports, violations }
}

describe('the parser finds every kind of import', () => {
  it('static, export-from, type-only, typeof import, dynamic with a literal, and computed', () => {
    const text = [
      "import { a } from '../test/a.ts'",
      "import type { B } from '../builder/b.ts'",
      "export { c } from './c.ts'",
      "export * from 'node:fs'",
      'const text = "import { x } from \'../test/not-an-import.ts\'"',
      "// import { y } from '../test/commented-out.ts'",
      "type D = typeof import('../test/d.ts')",
      'async function load(name: string) {',
      "  await import('onnxruntime-node')",
      '  await import(`./template.ts`)',
      '  await import(/* @vite-ignore */ name)',
      "  await import('./' + name)",
      '}',
    ].join('\n')
    expect(findImports('x.ts', text)).toEqual([
      { specifier: '../test/a.ts', line: 1, kind: 'static' },
      { specifier: '../builder/b.ts', line: 2, kind: 'static' },
      { specifier: './c.ts', line: 3, kind: 'static' },
      { specifier: 'node:fs', line: 4, kind: 'static' },
      { specifier: '../test/d.ts', line: 7, kind: 'type' },
      { specifier: 'onnxruntime-node', line: 9, kind: 'dynamic' },
      { specifier: './template.ts', line: 10, kind: 'dynamic' },
      { specifier: undefined, line: 11, kind: 'dynamic', computed: 'name' },
      { specifier: undefined, line: 12, kind: 'dynamic', computed: "'./' + name" },
    ])
  })

  it('core: platform modules are caught, npm libraries are not', () => {
    for (const name of ['node:fs', 'fs', 'path', 'onnxruntime-web', 'onnxruntime-node', 'cloudflare:workers'])
      expect(isPlatformSpecific(name), name).toBe(true)
    for (const name of ['@huggingface/tokenizers', '@huggingface/jinja', 'hono'])
      expect(isPlatformSpecific(name), name).toBe(false)
  })
})

describe('the dependency arrows (docs/architecture.md)', () => {
  it('no shipped file imports test/, demo/ or tools/, or against the arrows; core is platform-free; no computed imports', () => {
    const { files, imports, violations } = checkRepository()
    // Guards against a vacuous pass (a wrong root, a walk that finds nothing).
    expect(files).toBeGreaterThan(150)
    expect(imports).toBeGreaterThan(500)
    expect(violations.map((v) => `${v.file}:${v.line} ${v.problem}`)).toEqual([])
  })

  it('every listed exception still exists (remove it from the list when the import goes)', () => {
    for (const edge of allowedEdges) {
      const targets = findImports(edge.from, readFileSync(join(root, edge.from), 'utf8')).flatMap((found) =>
        found.specifier === undefined ? [] : targetsOf(edge.from, found.specifier).map(toPosix),
      )
      expect(targets, `${edge.from} → ${edge.to} (${edge.why})`).toContain(edge.to)
    }
  })
})
