// For tests and diagnostics that watch the engine's kernels: wraps the exports of every WebAssembly
// instance created after the call, so each kernel call goes through `around(name, args, call)`.
// The engine instantiates its modules with WebAssembly.instantiate (kernels.ts), so this sees
// every kernel of every session; other exports (memory, globals) pass through unchanged.

export type KernelCall = (name: string, args: number[], call: () => unknown) => unknown

export function watchKernelCalls(around: KernelCall): void {
  const instantiate = WebAssembly.instantiate.bind(WebAssembly) as (
    module: WebAssembly.Module,
    imports?: WebAssembly.Imports,
  ) => Promise<WebAssembly.Instance>
  ;(WebAssembly as { instantiate: unknown }).instantiate = async (
    module: WebAssembly.Module,
    imports?: WebAssembly.Imports,
  ) => {
    const instance = await instantiate(module, imports)
    const exports: Record<string, unknown> = {}
    for (const [name, value] of Object.entries(instance.exports)) {
      if (typeof value !== 'function') {
        exports[name] = value
        continue
      }
      const kernel = value as (...args: number[]) => unknown
      exports[name] = (...args: number[]) => around(name, args, () => kernel(...args))
    }
    return { exports } as unknown as WebAssembly.Instance
  }
}
