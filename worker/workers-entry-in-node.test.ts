// `import 'ondevice/worker'` in Node (a newcomer's first try for a server) says to use
// ondevice/worker/node instead of failing on "Cannot find package 'env'" inside a .wasm import.
// A real Node process resolving the package by name, as a user's script does.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))

function importInNode(specifier: string): { name: string; code: string; message: string } | 'loaded' {
  const script = `import(${JSON.stringify(specifier)}).then(() => console.log('"loaded"'), (error) => console.log(JSON.stringify({ name: error.name, code: error.code, message: error.message })))`
  const output = execFileSync(
    process.execPath,
    ['--conditions=ondevice-source', '--input-type=module', '-e', script],
    {
      cwd: root,
      encoding: 'utf8',
    },
  )
  return JSON.parse(output.trim().split('\n').at(-1) as string)
}

describe('ondevice/worker in Node', () => {
  it('throws OndeviceError(unsupported) naming ondevice/worker/node; ondevice/worker/node loads', () => {
    const result = importInNode('ondevice/worker')
    expect(result).toMatchObject({ name: 'OndeviceError', code: 'unsupported' })
    expect((result as { message: string }).message).toContain("import 'ondevice/worker/node'")
    expect(importInNode('ondevice/worker/node')).toBe('loaded')
  })
})
