// package.json's "sideEffects" tells bundlers (webpack, Rollup, esbuild, Vite, Parcel) which of the
// package's modules do something when imported. A module left out of the list is dropped whenever
// nothing it exports is used: a worker entry that serves its messages, a guard that throws, a
// registration. The bundle builds and the failure shows only at run time, so this reads every
// shipped module (the sources `npm run build` compiles, and the files they import) and checks that
// each one with a statement that runs at import is in the list, as source and as built dist/ file,
// and that no entry of the list is stale.
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { repositoryRoot } from './consumer-project.ts'
import { shippedSources } from './shipped-sources.ts'

const manifest = JSON.parse(readFileSync(join(repositoryRoot, 'package.json'), 'utf8')) as {
  sideEffects: string[]
}

/** webpack's reading of a sideEffects glob with a '/': relative to the package, `*` within one folder. */
function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/^\.\//, '')
    .split(/(\*\*|\*)/)
    .map((piece) =>
      piece === '**' ? '.*' : piece === '*' ? '[^/]*' : piece.replace(/[.+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('')
  return new RegExp(`^${body}$`)
}
const patterns = manifest.sideEffects.map((glob) => ({ glob, pattern: globToRegExp(glob) }))
const listed = (path: string): boolean => patterns.some(({ pattern }) => pattern.test(path))

/** The top-level statements that run code when the module is imported (declarations and imports do not). */
function importTimeStatements(file: string): string[] {
  const source = ts.createSourceFile(
    file,
    readFileSync(join(repositoryRoot, file), 'utf8'),
    ts.ScriptTarget.Latest,
  )
  return source.statements
    .filter((statement) => {
      if (
        ts.isImportDeclaration(statement) ||
        ts.isExportDeclaration(statement) ||
        ts.isExportAssignment(statement) ||
        ts.isImportEqualsDeclaration(statement) ||
        ts.isFunctionDeclaration(statement) ||
        ts.isClassDeclaration(statement) ||
        ts.isInterfaceDeclaration(statement) ||
        ts.isTypeAliasDeclaration(statement) ||
        ts.isEnumDeclaration(statement) ||
        ts.isModuleDeclaration(statement) ||
        // Constants and tables: a bundler drops them with the module, which is what dropping means.
        ts.isVariableStatement(statement)
      )
        return false
      // `void name` (a compile-time check kept alive) runs nothing.
      if (ts.isExpressionStatement(statement) && ts.isVoidExpression(statement.expression)) return false
      // A script's `if (import.meta.main)` runs only as the program's entry, which a bundler keeps.
      if (ts.isIfStatement(statement) && statement.expression.getText(source) === 'import.meta.main')
        return false
      return true
    })
    .map((statement) => statement.getText(source).split('\n')[0] as string)
}

describe('package.json "sideEffects"', () => {
  const sources = shippedSources()

  it('names every shipped module that runs code at import, as its source and its dist/ file', () => {
    expect(sources.length).toBeGreaterThan(100)
    const effectful = sources.filter((file) => importTimeStatements(file).length > 0)
    // The worker entries, the engine's helper threads, the Workers entry's Node guard (a throw).
    expect(effectful).toContain('sdk/device-worker.ts')
    const missing = effectful
      .flatMap((file) => [file, `dist/${file.replace(/\.ts$/, '.js')}`])
      .filter((path) => !listed(path))
      .map((path) => {
        const source = path.startsWith('dist/') ? path.slice(5).replace(/\.js$/, '.ts') : path
        return `${path}: ${importTimeStatements(source)[0]}`
      })
    expect(missing, 'add these to package.json "sideEffects" (a bundler drops them otherwise)').toEqual([])
  })

  it('has no stale entry: each one matches a file the package has', () => {
    const files = [
      ...sources,
      ...sources.map((file) => `dist/${file.replace(/\.ts$/, '.js')}`),
      ...readdirSync(join(repositoryRoot, 'cli')).map((name) =>
        relative(repositoryRoot, join(repositoryRoot, 'cli', name)),
      ),
    ]
    const stale = patterns
      .filter(({ pattern }) => !files.some((file) => pattern.test(file)))
      .map(({ glob }) => glob)
    expect(stale).toEqual([])
  })
})
