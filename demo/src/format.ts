// Figures as a person reads them on the page (sizes in binary units, named as such: 1 KiB = 1024 B).

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '?'
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(0)} KiB`
  return `${bytes} B`
}

export function formatMilliseconds(milliseconds: number): string {
  if (!Number.isFinite(milliseconds)) return '?'
  return milliseconds >= 1000 ? `${(milliseconds / 1000).toFixed(2)} s` : `${Math.round(milliseconds)} ms`
}

export function formatRate(tokensPerSecond: number): string {
  if (!Number.isFinite(tokensPerSecond) || tokensPerSecond <= 0) return '–'
  return tokensPerSecond >= 100 ? tokensPerSecond.toFixed(0) : tokensPerSecond.toFixed(1)
}

const backendNames: Readonly<Record<string, string>> = {
  webgpu: 'WebGPU',
  wasm: 'WASM',
  native: 'native',
}

/** "device · WebGPU", "device · WASM", "edge", "device + edge". */
export function routeLabel(route: string, backend: string | undefined): string {
  if (route === 'device') {
    const name = backend === undefined ? undefined : (backendNames[backend] ?? backend)
    return name === undefined ? 'device' : `device · ${name}`
  }
  if (route === 'device+edge') return 'device + edge (handoff)'
  if (route === 'edge') return 'edge'
  return route
}
