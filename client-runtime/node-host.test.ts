import { describe, expect, it } from 'vitest'
import { isNotInstalled } from './node-host.ts'

// The errors are the ones each resolver throws for `import('onnxruntime-node')` from ondevice
// when the app did not add the optional peer (seen with npm 11 and Yarn 4's Plug'n'Play).
describe('isNotInstalled: onnxruntime-node left out vs installed and broken', () => {
  it("Node's resolver (npm, pnpm, Yarn's node_modules)", async () => {
    const error = await import('onnxruntime-node-is-not-a-package' as string).catch(
      (caught: unknown) => caught,
    )
    expect((error as { code?: string }).code).toBe('ERR_MODULE_NOT_FOUND')
    expect(isNotInstalled(error)).toBe(true)
  })

  it("Yarn's Plug'n'Play: the peer the app did not provide", () => {
    const error = Object.assign(
      new Error(
        "ondevice tried to access onnxruntime-node (a peer dependency) but it isn't provided by your application; this makes the require call ambiguous and unsound.",
      ),
      { code: 'MODULE_NOT_FOUND', pnpCode: 'MISSING_PEER_DEPENDENCY' },
    )
    expect(isNotInstalled(error)).toBe(true)
  })

  it('installed but its native binding missing is a load failure, not "not installed"', () => {
    const error = Object.assign(
      new Error("Cannot find module '../bin/napi-v6/linux/x64/onnxruntime_binding.node'"),
      {
        code: 'MODULE_NOT_FOUND',
      },
    )
    expect(isNotInstalled(error)).toBe(false)
    expect(isNotInstalled(new Error('libonnxruntime.so.1: cannot open shared object file'))).toBe(false)
    expect(isNotInstalled(undefined)).toBe(false)
  })
})
