// The shipped modules import each other without a cycle. A bundler builds an app from them: Rollup
// printed "(!) Circular dependency node_modules/ondevice/dist/core/model-package.js ->
// node_modules/ondevice/dist/core/memory-estimate.js -> .../model-package.js" in every build of the
// esbuild/Rollup recipe (docs/sdk.md), and a cycle makes what a module sees at its first run
// depend on which module of the cycle the app reached first. Only imports that stay in the built
// JavaScript count: `import type` and all-type import lists are erased (an import of only
// `type` names under verbatimModuleSyntax keeps an empty `import {}`, which also counts).
import { readFileSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { repositoryRoot } from './consumer-project.ts'
import { shippedSources } from './shipped-sources.ts'

/** The shipped modules `file` imports in its built JavaScript (relative .ts imports, static). */
function runtimeImports(file: string, shipped: ReadonlySet<string>): string[] {
  const source = ts.createSourceFile(
    file,
    readFileSync(join(repositoryRoot, file), 'utf8'),
    ts.ScriptTarget.Latest,
  )
  const found: string[] = []
  for (const statement of source.statements) {
    let specifier: ts.Expression | undefined
    if (ts.isImportDeclaration(statement)) {
      if (statement.importClause?.isTypeOnly) continue
      specifier = statement.moduleSpecifier
    } else if (ts.isExportDeclaration(statement)) {
      if (statement.isTypeOnly) continue
      specifier = statement.moduleSpecifier
    }
    if (specifier === undefined || !ts.isStringLiteral(specifier) || !specifier.text.startsWith('.')) continue
    const target = normalize(join(dirname(file), specifier.text))
    if (shipped.has(target)) found.push(target)
  }
  return found
}

describe('the shipped modules', () => {
  it('import each other without a cycle', () => {
    const files = shippedSources()
    const shipped = new Set(files)
    const graph = new Map(files.map((file) => [file, runtimeImports(file, shipped)]))
    expect([...graph.values()].flat().length).toBeGreaterThan(500)
    const cycles: string[] = []
    const state = new Map<string, 'open' | 'done'>()
    const path: string[] = []
    const visit = (file: string): void => {
      state.set(file, 'open')
      path.push(file)
      for (const target of graph.get(file) ?? []) {
        if (state.get(target) === 'open')
          cycles.push([...path.slice(path.indexOf(target)), target].join(' -> '))
        else if (!state.has(target)) visit(target)
      }
      path.pop()
      state.set(file, 'done')
    }
    for (const file of files) if (!state.has(file)) visit(file)
    expect(cycles).toEqual([])
  })
})
