// Child process for one engine's peak memory: loads the package, runs one long prompt and a few
// tokens, and prints {loadMs, baselineRssBytes, peakRssBytes} as its last line. A fresh process per
// engine, because two engines in one process can't be told apart in its RSS.
import { readFileSync } from 'node:fs'
import type { Backend } from '../../../client-runtime/dtype.ts'
import { openOurs, openTransformers } from './engines.ts'

interface ProbeRequest {
  readonly engine: 'ours' | 'transformers'
  readonly folder: string
  readonly dtype: string
  readonly cacheFolder: string
  readonly promptTokenIds: readonly number[]
  readonly maxTokens: number
  /** For 'ours': the backend (default native) and WASM threads. */
  readonly backend?: Backend
  readonly numThreads?: number
}

const request = JSON.parse(process.argv[2] ?? '{}') as ProbeRequest
/**
 * This process's peak RSS. Linux keeps getrusage's ru_maxrss across execve, so a child started by
 * a big bench process would report the parent's peak; /proc/self/status's VmHWM starts fresh.
 */
function peakRss(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))
    if (match) return Number(match[1]) * 1024
  } catch {
    // Not Linux: fall back to getrusage.
  }
  return process.resourceUsage().maxRSS * 1024
}

const baselineRssBytes = peakRss()
const engine =
  request.engine === 'ours'
    ? await openOurs({
        folder: request.folder,
        dtype: request.dtype,
        backend: request.backend ?? 'native',
        cacheFolder: request.cacheFolder,
        ...(request.numThreads === undefined ? {} : { numThreads: request.numThreads }),
      })
    : await openTransformers({ folder: request.folder, dtype: request.dtype })
await engine.run(request.promptTokenIds, request.maxTokens)
const peakRssBytes = peakRss()
await engine.dispose()
console.log(JSON.stringify({ loadMs: engine.loadMs, baselineRssBytes, peakRssBytes }))
