// package.json's "dependencies" are what every `npm install ondevice` downloads and keeps, so each
// one must be something the published package uses: a module the shipped sources import (in code
// or in the declarations tsc writes from them), or the types a dependency's own declarations name
// (tsc without skipLibCheck needs them in the user's node_modules). protobufjs 8 was listed from
// the first commit and never imported (the ONNX writer and reader are hand-written): 4 MiB in
// every user's node_modules for nothing.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { repositoryRoot } from './consumer-project.ts'
import { shippedSources } from './shipped-sources.ts'

const manifest = JSON.parse(readFileSync(join(repositoryRoot, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
}

/** The package a bare specifier names: `@scope/name` or `name` (a subpath dropped). */
function packageOf(specifier: string): string {
  const parts = specifier.split('/')
  return (specifier.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/')
}

/** Every package the shipped sources import, as a value or as a type, statically or with import(). */
function importedPackages(): Set<string> {
  const found = new Set<string>()
  for (const file of shippedSources()) {
    const text = readFileSync(join(repositoryRoot, file), 'utf8')
    for (const [, specifier] of text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"]([^'"./#][^'"]*)['"]/g)) {
      if (!(specifier as string).startsWith('node:')) found.add(packageOf(specifier as string))
    }
  }
  return found
}

/** The bare specifiers a dependency's own declaration file names (its package.json's `types`). */
function declarationImports(name: string): Set<string> {
  const folder = join(repositoryRoot, 'node_modules', name)
  const packageJson = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as {
    types?: string
    typings?: string
  }
  const text = readFileSync(join(folder, packageJson.types ?? packageJson.typings ?? 'index.d.ts'), 'utf8')
  return new Set(
    [...text.matchAll(/\bfrom\s*['"]([^'"./][^'"]*)['"]/g)].map(([, specifier]) =>
      packageOf(specifier as string),
    ),
  )
}

describe('package.json "dependencies"', () => {
  it('lists only packages the published package uses', () => {
    const imported = importedPackages()
    // The scan finds what the package is known to import (it ran over the shipped sources).
    expect(imported).toContain('onnxruntime-web')
    expect(imported).toContain('hono')
    const unused = Object.keys(manifest.dependencies).filter((name) => {
      if (imported.has(name)) return false
      // Types only: needed where a dependency's declarations name them (`json-schema` in
      // @ai-sdk/provider's, which ondevice/ai-sdk's declarations reach).
      if (name.startsWith('@types/')) {
        const typed = name.slice('@types/'.length)
        return !Object.keys(manifest.dependencies).some(
          (dependency) => !dependency.startsWith('@types/') && declarationImports(dependency).has(typed),
        )
      }
      return true
    })
    expect(unused, 'remove these from "dependencies" (nothing shipped imports them)').toEqual([])
  })

  it('keeps the optional peers out of "dependencies"', () => {
    for (const name of Object.keys(manifest.peerDependencies)) {
      expect(manifest.dependencies[name], name).toBeUndefined()
    }
  })
})
