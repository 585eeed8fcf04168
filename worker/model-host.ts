// The model behind the API, loaded lazily once per isolate (or process). The first request
// starts the load; requests that arrive while it runs wait on the same promise, so a burst of
// cold requests costs one load. A failed load is remembered for a short while (503 with
// Retry-After) and then tried again, so a transient failure (R2 hiccup) heals by itself.
import { OndeviceError } from '../core/errors.ts'
import type { ModelSession } from '../core/model-session.ts'
import type { Tokenizer } from '../core/tokenizer.ts'

export interface HostedModelInfo {
  /** The id clients put in `model` and that `/v1/models` lists. */
  readonly modelId: string
  readonly backend: string
  readonly dtype: string
  readonly contextLength: number
}

/** What a loaded model gives the app. */
export interface HostedModel {
  readonly info: HostedModelInfo
  readonly tokenizer: Tokenizer
  /**
   * Makes one more session over the loaded weights. The app keeps at most `maxConcurrent` of them
   * (one per concurrent generation) and reuses idle ones, so their caches serve multi-turn prompts.
   */
  createSession(): Promise<ModelSession>
  dispose?(): Promise<void>
}

export type ModelHostStatus =
  | { readonly state: 'idle' }
  | { readonly state: 'loading' }
  | { readonly state: 'ready'; readonly info: HostedModelInfo; readonly loadMs: number }
  | { readonly state: 'failed'; readonly error: OndeviceError }

export interface ModelHost {
  /** The model id, known before loading (from configuration), so unknown ids are refused cheaply. */
  readonly modelId: string
  load(): Promise<HostedModel>
  status(): ModelHostStatus
}

export interface ModelHostOptions {
  readonly modelId: string
  readonly load: () => Promise<HostedModel>
  /** How long a failed load is remembered before the next request tries again. Default 30 s. */
  readonly retryAfterMs?: number
  readonly now?: () => number
}

/**
 * This server answers chat completions only: a model whose tokenizer cannot build a chat prompt
 * (no chat template, or one that does not render) would report healthy and fail every request.
 * Such a load fails instead, so /healthz says so (503) and every request says why.
 */
function checkChatPrompt(model: HostedModel): void {
  try {
    model.tokenizer.applyChatTemplate([{ role: 'user', content: 'Hi' }])
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new Error(
      `The package's tokenizer cannot build a chat prompt (${reason}) and this server answers chat completions only. Use a package whose tokenizer_config.json has a chat_template (or that has chat_template.jinja), and check that every file manifest.json lists was uploaded.`,
      { cause: error },
    )
  }
}

/** Wraps a loader so that it runs at most once at a time and its result is kept. */
export function createModelHost(options: ModelHostOptions): ModelHost {
  if (typeof options.modelId !== 'string' || options.modelId.length === 0) {
    throw new TypeError(
      'createModelHost: `modelId` must be a non-empty string (the id clients send as `model`).',
    )
  }
  const retryAfterMs = options.retryAfterMs ?? 30_000
  const now = options.now ?? (() => Date.now())
  let loading: Promise<HostedModel> | undefined
  let status: ModelHostStatus = { state: 'idle' }
  let failedAt = 0

  const start = (): Promise<HostedModel> => {
    const startedAt = now()
    status = { state: 'loading' }
    return options
      .load()
      .then(async (model) => {
        try {
          checkChatPrompt(model)
        } catch (error) {
          await model.dispose?.().catch(() => {})
          throw error
        }
        return model
      })
      .then(
        (model) => {
          status = { state: 'ready', info: model.info, loadMs: now() - startedAt }
          return model
        },
        (cause: unknown) => {
          failedAt = now()
          const reason = cause instanceof Error ? cause.message : String(cause)
          const error = new OndeviceError(
            'edge_unavailable',
            `The model could not be loaded on this server: ${reason} The operator must fix the model package; retry later.`,
            { isRetryable: true, retryAfterSeconds: Math.ceil(retryAfterMs / 1000), cause },
          )
          status = { state: 'failed', error }
          throw error
        },
      )
  }

  return {
    modelId: options.modelId,
    status: () => status,
    load() {
      if (status.state === 'failed' && now() - failedAt >= retryAfterMs) loading = undefined
      loading ??= start()
      return loading
    },
  }
}
