// `ondevice generate`: one answer from a model on this machine (onnxruntime-node or
// onnxruntime-web's WASM), streamed to stdout; `--json` prints one object with the text, the
// token ids and usage instead. Without --model it runs the embedded default package.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { defaultPackageDescription, ensureDefaultPackage } from '../../builder/default-package.ts'
import {
  type Backend,
  type DownloadProgress,
  type LoadedModel,
  loadModel,
} from '../../client-runtime/index.ts'
import { formatBytes, usableCacheDir } from '../../client-runtime/store/node-store.ts'
import type { ChatMessage } from '../../core/chat-template.ts'
import { type ChatPrompt, encodeChatTurns } from '../../core/chat-turns.ts'
import { InvalidArgumentError } from '../../core/errors.ts'
import { generate } from '../../core/generate.ts'
import { maxTemperature, type SamplingOptions } from '../../core/sampling/index.ts'
import type { FinishPart } from '../../core/stream-parts.ts'
import { type ConstraintOptions, compileConstraint } from '../../core/structured/constraint.ts'

export const help = `Usage: ondevice generate [--model DIR|URL] --prompt TEXT [options]

Runs a model on this machine and streams its answer to stdout.

Options:
  --model DIR|URL      A model package folder or URL prefix (where config.json lives). Without it,
                       the embedded default: a tiny random-weight Qwen3.5 package whose text is not
                       meaningful. For real text, point at a published onnx-community package, e.g.
                       --model https://huggingface.co/onnx-community/Qwen3-0.6B-ONNX/resolve/main/
                       or a converted checkpoint: ondevice convert (stories260K gives real stories).
  --prompt TEXT        The user message (or, with --raw, the text to continue)
  --system TEXT        A system message (chat template only)
  --thinking on|off    A thinking model's switch (Qwen3, Qwen3.5: the template's enable_thinking);
                       default: the template's own
  --raw                Skip the chat template: continue the prompt as plain text
  --max-tokens N       Most tokens to generate (default 256)
  --temperature T      From 0 to ${maxTemperature} (0 = greedy; default 0.7, 0 for models without a chat
                       template): the range the SDK and the edge take too
  --top-k K  --top-p P  --min-p P
  --seed S             Sampling seed (same seed, same tokens)
  --stop STR           Stop string (repeatable)
  --backend B          native (onnxruntime-node; the default when installed), wasm (ondevice's WebAssembly
                       engine; onnxruntime-web where it does not cover the model) or ort-wasm
                       (onnxruntime-web's WASM)
  --dtype D            Weight format (default: the fastest this backend has: q4 native and
                       wasm, q8 ort-wasm)
  --threads N          WASM threads
  --json-schema FILE   The answer must be JSON following this JSON Schema (enforced token by token;
                       an unsupported keyword is refused, naming it)
  --json               Print one JSON object: { text, token_ids, finish_reason, usage } (and
                       reasoning: a thinking model's <think> block, when it wrote one, its
                       tokens counted in usage.completion_tokens_details.reasoning_tokens;
                       partial: true when --max-tokens cut a --json-schema answer short)
  --help, -h           Show this help

Download progress goes to stderr; files are kept in ~/.cache/ondevice (ONDEVICE_CACHE_DIR).`

export const modelOptions = {
  model: { type: 'string' },
  backend: { type: 'string' },
  dtype: { type: 'string' },
  threads: { type: 'string' },
  system: { type: 'string' },
  thinking: { type: 'string' },
  raw: { type: 'boolean' },
  'max-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const

type ModelFlagValues = {
  [K in keyof typeof modelOptions]?: (typeof modelOptions)[K] extends { multiple: true }
    ? string[]
    : (typeof modelOptions)[K] extends { type: 'boolean' }
      ? boolean
      : string
}

export function numberFlag(
  values: Record<string, unknown>,
  name: string,
  check: (value: number) => boolean,
  rule: string,
): number | undefined {
  const text = values[name]
  if (text === undefined) return undefined
  const value = Number(text)
  if (typeof text !== 'string' || text.trim() === '' || !Number.isFinite(value) || !check(value)) {
    throw new InvalidArgumentError(`--${name}`, `--${name} must be ${rule}, got ${JSON.stringify(text)}.`)
  }
  return value
}

/**
 * The sampling flags, checked with the bounds the SDK and the edge use (so a command that works
 * here works against either). Without --temperature, `defaultTemperature` (none: left out, for a
 * caller that checks the flags before it knows the default).
 */
export function samplingFromFlags(values: ModelFlagValues, defaultTemperature?: number): SamplingOptions {
  const temperature =
    numberFlag(
      values,
      'temperature',
      (v) => v >= 0 && v <= maxTemperature,
      `a number from 0 to ${maxTemperature} (0 = greedy)`,
    ) ?? defaultTemperature
  const topK = numberFlag(values, 'top-k', (v) => Number.isInteger(v) && v >= 0, 'a whole number ≥ 0')
  const topP = numberFlag(values, 'top-p', (v) => v > 0 && v <= 1, 'a number in (0, 1]')
  const minP = numberFlag(values, 'min-p', (v) => v >= 0 && v <= 1, 'a number in [0, 1]')
  // Any safe integer, as the SDK and the HTTP API take it (a negative one as --seed=-5).
  const seed = numberFlag(values, 'seed', Number.isSafeInteger, 'a whole number')
  return {
    ...(temperature === undefined ? {} : { temperature }),
    ...(topK === undefined ? {} : { topK }),
    ...(topP === undefined ? {} : { topP }),
    ...(minP === undefined ? {} : { minP }),
    ...(seed === undefined ? {} : { seed }),
  }
}

/** Download progress on stderr: a redrawn bar on a terminal, one line per finished file otherwise. */
export function progressReporter(stderr: NodeJS.WriteStream = process.stderr): {
  onProgress: (progress: DownloadProgress) => void
  done: () => void
} {
  let drawn = false
  let lastDraw = 0
  return {
    onProgress: (progress) => {
      if (progress.phase === 'cached') return
      if (!stderr.isTTY) {
        if (progress.phase === 'done')
          stderr.write(`ondevice: downloaded ${progress.file} (${formatBytes(progress.fileLoadedBytes)})\n`)
        return
      }
      const now = Date.now()
      if (progress.phase === 'download' && now - lastDraw < 100) return
      lastDraw = now
      const total = progress.totalBytes ?? 0
      const fraction = total > 0 ? Math.min(1, progress.loadedBytes / total) : 0
      const width = 30
      const bar = '#'.repeat(Math.round(fraction * width)).padEnd(width, '-')
      const amount =
        total > 0
          ? `${formatBytes(progress.loadedBytes)}/${formatBytes(total)}`
          : formatBytes(progress.loadedBytes)
      stderr.write(
        `\r\x1b[2K[${bar}] ${(fraction * 100).toFixed(0).padStart(3)}% ${amount} ${progress.phase} ${progress.file}`,
      )
      drawn = true
    },
    done: () => {
      if (drawn) stderr.write('\r\x1b[2K')
      drawn = false
    },
  }
}

let toldAboutDefault = false

/** Loads --model (or the embedded default, saying once that its text is not meaningful). */
export async function loadModelFromFlags(values: ModelFlagValues): Promise<LoadedModel> {
  // Without --backend: native when onnxruntime-node is installed, else WASM (the load says so).
  const backend = values.backend
  if (backend !== undefined && backend !== 'native' && backend !== 'wasm' && backend !== 'ort-wasm') {
    throw new InvalidArgumentError(
      '--backend',
      `--backend must be native or wasm (or ort-wasm) on the command line, got ${JSON.stringify(backend)}.`,
    )
  }
  const threads = numberFlag(
    values,
    'threads',
    (v) => Number.isInteger(v) && v >= 1 && v <= 64,
    'a whole number from 1 to 64',
  )
  let model = values.model
  if (model === undefined) {
    if (!toldAboutDefault) {
      process.stderr.write(
        `ondevice: no --model given, using ${defaultPackageDescription}. Pass --model DIR|URL for a real model (see --help).\n`,
      )
      toldAboutDefault = true
    }
    model = await ensureDefaultPackage({ cacheDir: await usableCacheDir() })
  }
  const progress = progressReporter()
  try {
    const loaded = await loadModel({
      model,
      ...(backend === undefined ? {} : { backend: backend as Backend }),
      ...(values.dtype === undefined ? {} : { dtype: values.dtype }),
      ...(threads === undefined ? {} : { numThreads: threads }),
      onProgress: progress.onProgress,
    })
    for (const warning of loaded.warnings) process.stderr.write(`ondevice: ${warning}\n`)
    return loaded
  } finally {
    progress.done()
  }
}

export function usageJson(finish: FinishPart): Record<string, unknown> {
  const { usage } = finish
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    // The wire's name (OpenAI's usage): how many of completion_tokens were the think block, tags included.
    ...(usage.reasoningTokens === undefined
      ? {}
      : { completion_tokens_details: { reasoning_tokens: usage.reasoningTokens } }),
    time_to_first_token_ms: usage.timeToFirstTokenMs,
    prefill_tokens_per_second: usage.prefillTokensPerSecond,
    decode_tokens_per_second: usage.decodeTokensPerSecond,
    backend: usage.backend,
    dtype: usage.dtype,
  }
}

/** The prompt: the chat template over the messages (with its turn boundaries), or (raw) the text as is. */
/**
 * A thinking model's reasoning goes to stderr, dimmed on a terminal: stdout holds the answer
 * alone (what a pipe wants), and a person at the terminal sees the reasoning first, apart.
 */
export function writeReasoning(text: string): void {
  if (text === '') return
  process.stderr.write(process.stderr.isTTY ? `\x1b[2m${text}\x1b[22m` : text)
}

/** `--thinking on|off`: the template's enable_thinking, or undefined for its default. */
export function thinkingFlag(values: { readonly thinking?: string | undefined }): boolean | undefined {
  if (values.thinking === undefined) return undefined
  if (values.thinking === 'on' || values.thinking === 'off') return values.thinking === 'on'
  throw new InvalidArgumentError(
    '--thinking',
    `--thinking takes on or off (got ${JSON.stringify(values.thinking)}); leave it out for the template's default.`,
  )
}

export function promptTokens(
  loaded: LoadedModel,
  messages: readonly ChatMessage[],
  raw: boolean,
  enableThinking?: boolean,
): ChatPrompt {
  const { tokenizer } = loaded
  if (raw) {
    const text = messages.map((message) => message.content).join('\n')
    const ids = tokenizer.encode(text)
    if (ids.length === 0 && tokenizer.bosTokenId !== undefined)
      return { tokenIds: [tokenizer.bosTokenId], turnBoundaries: [] }
    if (ids.length === 0)
      throw new InvalidArgumentError(
        '--prompt',
        'The prompt encodes to no tokens and the model has no BOS token: give some text.',
      )
    return { tokenIds: ids, turnBoundaries: [] }
  }
  return encodeChatTurns(tokenizer, messages, {
    addGenerationPrompt: true,
    ...(enableThinking === undefined ? {} : { enableThinking }),
  })
}

/** `--json-schema FILE`: the schema, compiled now so a bad one fails before the model loads. */
function readSchemaConstraint(file: string): ConstraintOptions {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new InvalidArgumentError(
      '--json-schema',
      `--json-schema: cannot read ${file} (${error instanceof Error ? error.message : String(error)}).`,
    )
  }
  let schema: unknown
  try {
    schema = JSON.parse(text)
  } catch (error) {
    throw new InvalidArgumentError(
      '--json-schema',
      `--json-schema: ${file} is not valid JSON (${error instanceof Error ? error.message : String(error)}).`,
    )
  }
  const constraint: ConstraintOptions = { responseFormat: { type: 'json_schema', schema } }
  compileConstraint(constraint)
  return constraint
}

/** The flags this command's parser accepts: every one is in `help` (cli/help.test.ts). */
export const options = {
  ...modelOptions,
  prompt: { type: 'string' },
  json: { type: 'boolean' },
  'json-schema': { type: 'string' },
} as const

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options,
    strict: true,
  })
  if (values.help) {
    process.stdout.write(`${help}\n`)
    return 0
  }
  if (values.prompt === undefined)
    throw new InvalidArgumentError(
      '--prompt',
      '--prompt is required: the message to answer (or with --raw, the text to continue).',
    )
  const maxTokens =
    numberFlag(values, 'max-tokens', (v) => Number.isInteger(v) && v >= 1, 'a whole number ≥ 1') ?? 256
  // Every flag is checked before the model loads (a download can take minutes); the default
  // temperature depends on the model (no chat template: greedy), so it is filled in after.
  const flagSampling = samplingFromFlags(values)
  const enableThinking = thinkingFlag(values)
  if (values.raw && enableThinking !== undefined)
    throw new InvalidArgumentError(
      '--thinking',
      '--thinking needs the chat template; drop --raw (or --thinking).',
    )
  const constraint =
    values['json-schema'] === undefined ? undefined : readSchemaConstraint(values['json-schema'])
  const loaded = await loadModelFromFlags(values)
  try {
    let raw = values.raw ?? false
    if (!raw && loaded.tokenizer.chatTemplate === undefined) {
      process.stderr.write(
        'ondevice: this model has no chat template; continuing the prompt as plain text (as --raw does).\n',
      )
      raw = true
    }
    for (const [flag, given] of [
      ['--system', values.system !== undefined],
      ['--thinking', enableThinking !== undefined],
    ] as const) {
      if (raw && given)
        throw new InvalidArgumentError(
          flag,
          values.raw
            ? `${flag} needs the chat template; drop --raw (or ${flag}).`
            : `${flag} needs a chat template, and this model has none (its prompt is plain text to continue): drop ${flag}.`,
        )
    }
    const messages: ChatMessage[] = [
      ...(values.system === undefined ? [] : [{ role: 'system' as const, content: values.system }]),
      { role: 'user', content: values.prompt },
    ]
    const prompt = promptTokens(loaded, messages, raw, enableThinking)
    const sampling: SamplingOptions = { temperature: raw ? 0 : 0.7, ...flagSampling }
    const controller = new AbortController()
    const onSignal = () => controller.abort()
    process.once('SIGINT', onSignal)
    let finish: FinishPart | undefined
    try {
      for await (const part of generate(loaded.session, loaded.tokenizer, {
        promptTokenIds: prompt.tokenIds,
        promptBoundaries: prompt.turnBoundaries,
        sampling,
        maxTokens,
        signal: controller.signal,
        ...(values.stop ? { stop: values.stop } : {}),
        ...(constraint === undefined ? {} : { constraint }),
      })) {
        if (part.type === 'text-delta') {
          if (!values.json) process.stdout.write(part.text)
        } else if (part.type === 'reasoning-delta') {
          if (!values.json) writeReasoning(part.text)
        } else finish = part
      }
    } finally {
      process.off('SIGINT', onSignal)
    }
    if (!finish) return 1
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ text: finish.text, ...(finish.reasoning === undefined ? {} : { reasoning: finish.reasoning }), token_ids: finish.tokenIds, finish_reason: finish.finishReason, ...(finish.partial ? { partial: true } : {}), usage: usageJson(finish) })}\n`,
      )
    } else {
      process.stdout.write('\n')
      if (finish.partial)
        process.stderr.write(
          'ondevice: --max-tokens cut the answer before its JSON was complete (partial output).\n',
        )
    }
    return finish.finishReason === 'abort' ? 130 : 0
  } finally {
    await loaded.dispose()
  }
}
