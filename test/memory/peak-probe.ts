// One fresh Node process per measurement: loads a package through the SDK's own path
// (loadModelWith on the Node host: store, tokenizer, dtype, backend), feeds a prompt, generates a
// few tokens greedily, and prints what that added to the process's resident memory as its last
// line (JSON). A fresh process, because a process's peak (VmHWM) never goes down: two loads in one
// process can't be told apart.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Backend } from '../../client-runtime/dtype.ts'
import { loadModelWith } from '../../client-runtime/load-model.ts'
import { nodeHost } from '../../client-runtime/node-host.ts'
import { createNodeStore } from '../../client-runtime/store/node-store.ts'
import { generate } from '../../core/generate.ts'

export interface PeakProbeRequest {
  readonly folder: string
  readonly backend: Backend
  readonly dtype: string
  /** Prompt tokens fed in one append. */
  readonly promptTokens: number
  /** Tokens generated after the prompt (greedy, EOS ignored). */
  readonly maxTokens: number
  /** Caps the session's context (default: the runtime's). */
  readonly contextLength?: number
  readonly numThreads?: number
}

export interface PeakProbeResult {
  /** Resident bytes just before the load (Node, V8 and the runtime's modules imported). */
  readonly baselineBytes: number
  /** The process's peak resident bytes (VmHWM) after load and generation. */
  readonly peakBytes: number
  /** peakBytes − baselineBytes: what the model cost. */
  readonly addedBytes: number
  /** Resident bytes right after the load, before any token. */
  readonly afterLoadBytes: number
  readonly backend: string
  readonly dtype: string
  readonly tokens: number
  readonly loadMs: number
}

function status(field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))
  if (!match) throw new Error(`/proc/self/status has no ${field}: peak memory is measured on Linux only`)
  return Number(match[1]) * 1024
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? '{}') as PeakProbeRequest
  const cacheDir = mkdtempSync(join(tmpdir(), 'ondevice-peak-'))
  try {
    // Everything the load will run is imported above; the peak so far is Node's and theirs.
    const baselineBytes = Math.max(status('VmRSS'), status('VmHWM'))
    const started = performance.now()
    const loaded = await loadModelWith(nodeHost, {
      model: request.folder,
      backend: request.backend,
      dtype: request.dtype,
      store: createNodeStore({ cacheDir, onWarning: () => undefined }),
      ...(request.contextLength === undefined ? {} : { contextLength: request.contextLength }),
      ...(request.numThreads === undefined ? {} : { numThreads: request.numThreads }),
    })
    const loadMs = performance.now() - started
    const afterLoadBytes = status('VmRSS')
    const vocabulary = loaded.session.info.vocabularySize
    // Token ids spread over the vocabulary (the text means nothing: random-weight fixtures).
    const promptTokenIds = Array.from(
      { length: request.promptTokens },
      (_, i) => (i * 7919 + 11) % vocabulary,
    )
    let tokens = 0
    for await (const part of generate(
      loaded.session,
      { eosTokenIds: [], decode: () => '' },
      { promptTokenIds, maxTokens: request.maxTokens, sampling: { temperature: 0 } },
    ))
      if (part.type === 'finish') tokens = part.tokenIds.length
    const peakBytes = status('VmHWM')
    const result: PeakProbeResult = {
      baselineBytes,
      peakBytes,
      addedBytes: peakBytes - baselineBytes,
      afterLoadBytes,
      backend: loaded.backend,
      dtype: loaded.dtype,
      tokens,
      loadMs,
    }
    await loaded.dispose()
    console.log(JSON.stringify(result))
  } finally {
    rmSync(cacheDir, { recursive: true, force: true })
  }
}

await main()
