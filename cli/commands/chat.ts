// `ondevice chat`: an interactive chat in the terminal with a model on this machine. The whole
// conversation is re-rendered through the chat template each turn; the generation loop reuses
// the session's cache for the part that is unchanged, so each turn only prefills what is new.
import { createInterface } from 'node:readline/promises'
import { parseArgs } from 'node:util'
import type { ChatMessage } from '../../core/chat-template.ts'
import { InvalidArgumentError } from '../../core/errors.ts'
import { generate } from '../../core/generate.ts'
import type { FinishPart } from '../../core/stream-parts.ts'
import {
  loadModelFromFlags,
  modelOptions,
  numberFlag,
  promptTokens,
  samplingFromFlags,
  thinkingFlag,
  writeReasoning,
} from './generate.ts'

export const help = `Usage: ondevice chat [--model DIR|URL] [options]

An interactive chat with a model on this machine. Type a message and press Enter.
/reset starts over, /exit (or Ctrl-D) quits, Ctrl-C stops an answer.

Options: the same as 'ondevice generate' (--model, --system, --thinking, --backend, --dtype, --threads,
--max-tokens, --temperature, --top-k, --top-p, --min-p, --seed, --stop; not --raw: chat always uses
the model's chat template; --max-tokens is per answer, default 512), plus
  --stats      Print tokens and speed after each answer (on stderr)
  --help, -h   Show this help`

/** The flags this command's parser accepts: every one is in `help` (cli/help.test.ts). */
export const options = { ...modelOptions, stats: { type: 'boolean' } } as const

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
  if (values.raw)
    throw new InvalidArgumentError(
      '--raw',
      "chat always uses the model's chat template; use 'ondevice generate --raw' to continue plain text.",
    )
  const maxTokens =
    numberFlag(values, 'max-tokens', (v) => Number.isInteger(v) && v >= 1, 'a whole number ≥ 1') ?? 512
  const sampling = samplingFromFlags(values, 0.7)
  const enableThinking = thinkingFlag(values)
  const loaded = await loadModelFromFlags(values)
  if (loaded.tokenizer.chatTemplate === undefined) {
    await loaded.dispose()
    throw new InvalidArgumentError(
      '--model',
      "This model has no chat template, so it cannot chat; use 'ondevice generate --raw --prompt ...' to continue text with it.",
    )
  }
  const system: ChatMessage[] =
    values.system === undefined ? [] : [{ role: 'system', content: values.system }]
  let messages: ChatMessage[] = [...system]
  const terminal = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: process.stdin.isTTY === true,
  })
  let answering: AbortController | undefined
  terminal.on('SIGINT', () => {
    if (answering) answering.abort()
    else terminal.close()
  })
  process.stderr.write(
    `ondevice chat: ${loaded.session.info.modelId} on ${loaded.backend} (${loaded.dtype}). /reset starts over, /exit quits.\n`,
  )
  // The line iterator buffers input, so piped lines typed ahead of an answer are not lost.
  const lines = terminal[Symbol.asyncIterator]()
  const prompt = () => {
    if (process.stdin.isTTY) process.stdout.write('> ')
  }
  try {
    for (;;) {
      prompt()
      const next = await lines.next()
      if (next.done) break // closed (Ctrl-D / end of input)
      const text = String(next.value).trim()
      if (text === '') continue
      if (text === '/exit' || text === '/quit') break
      if (text === '/reset') {
        messages = [...system]
        process.stderr.write('(conversation cleared)\n')
        continue
      }
      messages.push({ role: 'user', content: text })
      answering = new AbortController()
      let finish: FinishPart | undefined
      try {
        const prompt = promptTokens(loaded, messages, false, enableThinking)
        for await (const part of generate(loaded.session, loaded.tokenizer, {
          promptTokenIds: prompt.tokenIds,
          promptBoundaries: prompt.turnBoundaries,
          sampling,
          maxTokens,
          signal: answering.signal,
          ...(values.stop ? { stop: values.stop } : {}),
        })) {
          if (part.type === 'text-delta') process.stdout.write(part.text)
          else if (part.type === 'reasoning-delta') writeReasoning(part.text)
          else finish = part
        }
      } catch (error) {
        // Keep the conversation usable after a failed turn (e.g. context full): drop that turn.
        messages.pop()
        process.stdout.write('\n')
        process.stderr.write(`ondevice chat: ${(error as Error).message}\n`)
        continue
      } finally {
        answering = undefined
      }
      process.stdout.write('\n')
      if (finish) {
        messages.push({
          role: 'assistant',
          content: finish.text,
          ...(finish.reasoning === undefined ? {} : { reasoningContent: finish.reasoning }),
        })
        if (values.stats) {
          process.stderr.write(`${answerStats(finish)}\n`)
        }
      }
    }
  } finally {
    terminal.close()
    await loaded.dispose()
  }
  return 0
}

/**
 * `--stats`' line after an answer: its counts (with, for a thinking model, how many of its tokens
 * were the think block: usage.reasoningTokens), speed and finish reason.
 */
export function answerStats(finish: FinishPart): string {
  const { usage } = finish
  const reasoning = usage.reasoningTokens ? ` (${usage.reasoningTokens} reasoning)` : ''
  return `(${usage.promptTokens} prompt + ${usage.completionTokens} tokens${reasoning}, ${usage.decodeTokensPerSecond.toFixed(1)} tokens/s, first token ${usage.timeToFirstTokenMs.toFixed(0)} ms, ${finish.finishReason})`
}
