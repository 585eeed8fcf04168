// One engine run in a browser context (the page or a module Web Worker): loadModel through the
// browser host with backend 'wasm' and the asked numThreads, a fixed prompt then single-token
// steps, and the SHA-256 of every logit row's bytes in order, which the test compares with
// Node's engine. Page and worker share this file.
import { browserHost } from '../../../client-runtime/browser-host.ts'
import { loadModelWith } from '../../../client-runtime/load-model.ts'

export interface EngineCaseRequest {
  /** Absolute URL prefix of the package (where config.json is served). */
  readonly packageUrl: string
  readonly dtype: string
  /** numThreads for loadModel; undefined: the host's default. */
  readonly threads?: number
  /** Appended in one piece, then... */
  readonly prompt: readonly number[]
  /** ...one token at a time. */
  readonly steps: readonly number[]
}

export interface EngineCaseResult {
  readonly sha256: string
  readonly rows: number
  readonly firstLogits: readonly number[]
  readonly backend: string
  readonly backendSetup: Readonly<Record<string, unknown>> | undefined
  readonly warnings: readonly string[]
  readonly crossOriginIsolated: boolean
  readonly milliseconds: number
}

export async function runEngineCase(request: EngineCaseRequest): Promise<EngineCaseResult> {
  const started = performance.now()
  const model = await loadModelWith(browserHost, {
    model: request.packageUrl,
    backend: 'wasm',
    dtype: request.dtype,
    ...(request.threads === undefined ? {} : { numThreads: request.threads }),
  })
  try {
    const rows = [await model.session.append([...request.prompt])]
    for (const token of request.steps) rows.push(await model.session.append([token]))
    const bytes = new Uint8Array(rows.reduce((sum, row) => sum + row.byteLength, 0))
    let offset = 0
    for (const row of rows) {
      bytes.set(new Uint8Array(row.buffer, row.byteOffset, row.byteLength), offset)
      offset += row.byteLength
    }
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
    return {
      sha256: [...digest].map((byte) => byte.toString(16).padStart(2, '0')).join(''),
      rows: rows.length,
      firstLogits: [...(rows[0] ?? []).slice(0, 4)],
      backend: model.backend,
      backendSetup: model.backendSetup,
      warnings: model.warnings,
      crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
      milliseconds: performance.now() - started,
    }
  } finally {
    await model.dispose()
  }
}
