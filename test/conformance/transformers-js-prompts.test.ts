// Prompt parity with transformers.js v4 beyond transformers-js.test.ts's corpus: every package the
// builder writes (the llama, qwen3 and qwen3_5 fixtures, which carry the real Qwen3 tokenizer, and
// stories260K converted from llama2.c), read by ours as a device reads it (loadPackageTokenizer)
// and by transformers.js from the same folder:
// - encode (with and without special tokens), the pieces and decode over widePromptTexts(): more
//   scripts, emoji sequences, line ends, long words, digit runs, code, added tokens' text;
// - the chat template over wideConversations() × generation prompt × enable_thinking (tool loops
//   with reasoning, unicode tool definitions, late system turns, odd text), on the fixtures' Qwen3
//   template and on the Qwen3-Coder XML tool-call dialect (Qwen3.5's), and the wire's messages
//   (developer, null content, text parts) against the messages they mean. Ids are the same unless
//   a caller string holds an added token's text (ours keeps it text, transformers-js.test.ts); the
//   text is the same unless the template also branches on that text (a user turn typed as a tool
//   result), which ours reads as the data it is; and such ids are transformers.js's spelling of
//   the stretch between the template's markers by a copy of the tokenizer with no added tokens;
// - streaming: the text every token adds (core's TextStream, as generate() runs it) joins to
//   transformers.js's decode and never holds half a character, on the corpus's ids and on random
//   ids heavy in partial UTF-8 bytes.
// Greedy answers of such prompts are in transformers-js.test.ts, next to the engines it loads.
import { existsSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { convertLlama2c } from '../../builder/importers/convert-llama2c.ts'
import { writeFixture } from '../../builder/index.ts'
import { loadPackageTokenizer } from '../../client-runtime/package-tokenizer.ts'
import type { ChatMessage, ChatTool } from '../../core/chat-template.ts'
import { fromWireMessages } from '../../core/protocol/messages.ts'
import type { ChatCompletionMessage } from '../../core/protocol/types.ts'
import { TextStream } from '../../core/text-stream.ts'
import { Tokenizer } from '../../core/tokenizer.ts'
import { folderReader } from '../bench/support/engines.ts'
import {
  type HuggingFaceMessage,
  promptTools,
  toCoreMessage,
  type WideConversation,
  wideConversations,
  widePromptTexts,
} from './prompt-corpus.ts'

/** The part of transformers.js's PreTrainedTokenizer these checks call. */
interface TheirTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): number[]
  decode(ids: readonly number[], options: { skip_special_tokens: boolean }): string
  tokenize(text: string, options: { add_special_tokens: boolean }): string[]
  apply_chat_template(messages: readonly HuggingFaceMessage[], options: Record<string, unknown>): unknown
}

async function theirTokenizer(folder: string): Promise<TheirTokenizer> {
  const { AutoTokenizer, env } = await import('@huggingface/transformers')
  env.allowRemoteModels = false
  env.allowLocalModels = true
  env.localModelPath = `${join(folder, '..')}/`
  const name = folder.split('/').at(-1) as string
  return (await AutoTokenizer.from_pretrained(name, { local_files_only: true })) as unknown as TheirTokenizer
}

const ourTokenizer = (folder: string): Promise<Tokenizer> => loadPackageTokenizer(folderReader(folder))

const storiesFolder = join(import.meta.dirname, '../../../shared/models/stories260K')
const storiesPresent = existsSync(join(storiesFolder, 'stories260K.bin'))

type PackageName = 'llama' | 'qwen3' | 'qwen3_5' | 'stories260K'
let folder: string
const packages = new Map<PackageName, Promise<string>>()

/** A package folder written once per run (fixtures: seed 3, fp32). */
function packageFolder(name: PackageName): Promise<string> {
  let written = packages.get(name)
  if (written === undefined) {
    const outDir = join(folder, name)
    written = (
      name === 'stories260K'
        ? convertLlama2c({
            checkpointPath: join(storiesFolder, 'stories260K.bin'),
            tokenizerPath: join(storiesFolder, 'tok512.bin'),
            outDir,
            dtypes: ['fp32'],
          })
        : writeFixture({ arch: name, outDir, seed: 3, dtype: 'fp32' })
    ).then(() => outDir)
    packages.set(name, written)
  }
  return written
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-transformers-js-prompts-'))
})
afterAll(async () => {
  await rm(folder, { recursive: true, force: true })
})

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Streams `ids` through core's TextStream: the deltas must join to transformers.js's decode, and
 * none may hold a lone surrogate or a U+FFFD the whole decode does not have at that place (half a
 * character released early).
 */
function expectStreamsLikeTheirDecode(
  ours: Tokenizer,
  theirs: TheirTokenizer,
  ids: readonly number[],
  skipSpecialTokens: boolean,
  label: string,
): void {
  const stream = new TextStream(ours, { skipSpecialTokens })
  const deltas = ids.map((id) => stream.push(id))
  deltas.push(stream.flush())
  const decoded = theirs.decode(ids, { skip_special_tokens: skipSpecialTokens })
  expect(deltas.join(''), label).toBe(decoded)
  let released = ''
  for (const delta of deltas) {
    released += delta
    expect(loneSurrogate.test(delta), `${label}: ${JSON.stringify(delta)}`).toBe(false)
    // Each release is final: the decode goes on from exactly what was shown.
    expect(decoded.startsWith(released), label).toBe(true)
  }
}

/** Every text of the wide corpus through both tokenizers (and through the stream); the number of checks. */
function compareTexts(ours: Tokenizer, theirs: TheirTokenizer): number {
  let compared = 0
  for (const [index, text] of widePromptTexts().entries()) {
    const label = JSON.stringify(text.slice(0, 80))
    for (const addSpecialTokens of [true, false]) {
      const ids = ours.encode(text, { addSpecialTokens })
      expect(ids, `encode ${label}`).toEqual(theirs.encode(text, { add_special_tokens: addSpecialTokens }))
      expect(ours.tokenize(text, { addSpecialTokens }).pieces, `pieces ${label}`).toEqual(
        theirs.tokenize(text, { add_special_tokens: addSpecialTokens }),
      )
      compared++
      if (ids.length === 0) continue // transformers.js refuses to decode nothing; ours gives ''
      for (const skipSpecialTokens of [false, true]) {
        expect(ours.decode(ids, { skipSpecialTokens }), `decode ${label}`).toBe(
          theirs.decode(ids, { skip_special_tokens: skipSpecialTokens }),
        )
        // Streamed once a text, skipping special tokens every other text.
        if (addSpecialTokens && skipSpecialTokens === (index % 2 === 1))
          expectStreamsLikeTheirDecode(ours, theirs, ids, skipSpecialTokens, `stream ${label}`)
        compared++
      }
    }
  }
  return compared
}

/** Seeded random ids, 40% single bytes (partial UTF-8), 10% added tokens, the rest any id. */
function randomIdRuns(tokenizer: Tokenizer, count: number): number[][] {
  let state = 77
  const next = () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff
    return state / 0x7fffffff
  }
  const size = tokenizer.vocabularySize
  const singleBytes: number[] = []
  const added: number[] = []
  for (let id = 0; id < size; id++) {
    const contribution = tokenizer.tokenContribution(id)
    if (contribution.kind === 'bytes' && contribution.bytes.length === 1) singleBytes.push(id)
    else if (contribution.kind === 'characters' && tokenizer.idToToken(id)?.startsWith('<')) added.push(id)
  }
  const runs: number[][] = []
  for (let run = 0; run < count; run++) {
    const ids: number[] = []
    const length = 1 + Math.floor(next() * 24)
    for (let index = 0; index < length; index++) {
      const kind = next()
      const from = kind < 0.4 ? singleBytes : kind < 0.5 ? added : undefined
      ids.push(from ? (from[Math.floor(next() * from.length)] as number) : Math.floor(next() * size))
    }
    runs.push(ids)
  }
  return runs
}

function compareRandomIdStreams(ours: Tokenizer, theirs: TheirTokenizer): void {
  for (const ids of randomIdRuns(ours, 1000))
    for (const skipSpecialTokens of [false, true]) {
      expect(ours.decode(ids, { skipSpecialTokens }), JSON.stringify(ids)).toBe(
        theirs.decode(ids, { skip_special_tokens: skipSpecialTokens }),
      )
      expectStreamsLikeTheirDecode(ours, theirs, ids, skipSpecialTokens, JSON.stringify(ids))
    }
}

/**
 * Added tokens' texts of a package (special or not), to tell the conversations where ours keeps a
 * caller's string as text (every added token outside an assistant's own text, special ones inside).
 */
async function addedTokenTexts(packageDir: string): Promise<{ every: string[]; special: string[] }> {
  const json = JSON.parse(await readFile(join(packageDir, 'tokenizer.json'), 'utf8')) as {
    added_tokens: { content: string; special: boolean }[]
  }
  return {
    every: json.added_tokens.map((token) => token.content),
    special: json.added_tokens.filter((token) => token.special).map((token) => token.content),
  }
}

function holdsControlText(conversation: WideConversation, added: { every: string[]; special: string[] }) {
  const holds = (value: unknown, texts: readonly string[]) => {
    const json = JSON.stringify(value) as string
    return texts.some((text) => json.includes(JSON.stringify(text).slice(1, -1)))
  }
  return (
    conversation.messages.some((message) => {
      const { content, reasoning_content, ...rest } = message
      const own = message['role'] === 'assistant' ? added.special : added.every
      return holds([content, reasoning_content], own) || holds(rest, added.every)
    }) || holds(conversation.tools ?? [], added.every)
  )
}

/**
 * Our render and encodeChat against apply_chat_template for every conversation × generation
 * prompt × enable_thinking (with the conversation's tools, or promptTools where it needs them).
 * `theirMessages` adapts a conversation for transformers.js where its template needs it.
 */
function compareConversations(
  ours: Tokenizer,
  theirs: TheirTokenizer,
  added: { every: string[]; special: string[] },
  theirMessages: (messages: readonly HuggingFaceMessage[]) => readonly HuggingFaceMessage[] = (m) => m,
): number {
  let compared = 0
  for (const conversation of wideConversations()) {
    const messages = conversation.messages.map(toCoreMessage) as unknown as ChatMessage[]
    const tools = conversation.tools ?? (conversation.needsTools ? promptTools : undefined)
    const controlText = holdsControlText(conversation, added)
    for (const addGenerationPrompt of [true, false])
      for (const enableThinking of [undefined, true, false]) {
        const label = `${conversation.name}, generation prompt ${addGenerationPrompt}, thinking ${enableThinking}`
        const theirOptions = {
          add_generation_prompt: addGenerationPrompt,
          ...(enableThinking === undefined ? {} : { enable_thinking: enableThinking }),
          ...(tools ? { tools } : {}),
        }
        const ourOptions = {
          addGenerationPrompt,
          ...(enableThinking === undefined ? {} : { enableThinking }),
          ...(tools ? { tools: tools as readonly ChatTool[] } : {}),
        }
        const theirText = theirs.apply_chat_template(theirMessages(conversation.messages), {
          ...theirOptions,
          tokenize: false,
        }) as string
        const theirIds = theirs.apply_chat_template(theirMessages(conversation.messages), {
          ...theirOptions,
          tokenize: true,
          return_tensor: false,
          return_dict: false,
        }) as number[]
        const text = ours.applyChatTemplate(messages, ourOptions)
        const ids = ours.encodeChat(messages, ourOptions)
        // Our ids always spell our text (the normalizer's NFC aside, as on both sides).
        expect(ours.decode(ids), label).toBe(ours.decode(ours.encode(text, { addSpecialTokens: false })))
        if (conversation.templateReadsControlText) {
          // transformers.js's template sees the tags and takes the user turn for a tool result, so
          // it keeps the earlier answer's reasoning; ours sees text, a user turn, as its ids say.
          expect(theirText, label).toContain('<think>\nR\n</think>\n\nA')
          expect(text, label).toBe(theirText.replace('<think>\nR\n</think>\n\n', ''))
          const tag = ours.tokenToId('<tool_response>') as number
          expect(theirIds, label).toContain(tag)
          expect(ids, label).not.toContain(tag)
        } else {
          expect(text, label).toBe(theirText)
          // With a caller's control text spelled in plain tokens: the same text, more ids.
          if (controlText) expect(ids.length, label).toBeGreaterThan(theirIds.length)
          else expect(ids, label).toEqual(theirIds)
        }
        compared++
      }
  }
  return compared
}

describe('the fixtures’ Qwen3 tokenizer against transformers.js', () => {
  let ours: Tokenizer
  let theirs: TheirTokenizer
  let packageDir: string
  beforeAll(async () => {
    packageDir = await packageFolder('qwen3')
    ours = await ourTokenizer(packageDir)
    theirs = await theirTokenizer(packageDir)
  })

  it('is the same files in every fixture (what holds for one holds for all)', async () => {
    for (const name of ['tokenizer.json', 'tokenizer_config.json']) {
      const files = await Promise.all(
        (['llama', 'qwen3', 'qwen3_5'] as const).map(async (arch) =>
          readFile(join(await packageFolder(arch), name)),
        ),
      )
      expect(files[0]?.equals(files[1] as Buffer), name).toBe(true)
      expect(files[0]?.equals(files[2] as Buffer), name).toBe(true)
    }
  })

  it('encodes, splits, decodes and streams every text of the wide corpus the same way', () => {
    expect(compareTexts(ours, theirs)).toBeGreaterThan(4000)
  })

  it('streams random ids heavy in partial UTF-8 to transformers.js’s decode, never half a character', () => {
    compareRandomIdStreams(ours, theirs)
  })

  it('spells a caller’s control text as transformers.js spells it with no added tokens, with the text around it', async () => {
    const compared = await compareControlTextSpelling(ours, theirs, packageDir, {
      opening: '<|im_start|>',
      stretch: (content) => `user\n${content}`,
      closing: '<|im_end|>\n<|im_start|>assistant\n',
      generationPrompt: true,
    })
    expect(compared).toBeGreaterThan(500)
  })
})

describe.each(['llama', 'qwen3', 'qwen3_5'] as const)(
  'the %s fixture’s chat template against transformers.js',
  (arch) => {
    it('renders the wide conversations to the same text and ids (caller control text aside)', async () => {
      const packageDir = await packageFolder(arch)
      const [ours, theirs] = [await ourTokenizer(packageDir), await theirTokenizer(packageDir)]
      expect(compareConversations(ours, theirs, await addedTokenTexts(packageDir))).toBeGreaterThan(100)
    })
  },
)

describe('the Qwen3-Coder XML tool-call template (Qwen3.5’s dialect) against transformers.js', () => {
  it('renders the wide conversations alike, a call’s JSON-text arguments as the object they spell', async () => {
    // The fixture's tokenizer files with the dialect's template over its chat_template.
    const source = await packageFolder('qwen3_5')
    const packageDir = join(folder, 'qwen3-xml-template')
    await mkdir(packageDir, { recursive: true })
    for (const name of ['tokenizer.json', 'config.json'])
      await copyFile(join(source, name), join(packageDir, name))
    const config = JSON.parse(await readFile(join(source, 'tokenizer_config.json'), 'utf8')) as object
    const template = await readFile(
      join(import.meta.dirname, '../support/templates/qwen3-xml-tool-calls.jinja'),
      'utf8',
    )
    await writeFile(
      join(packageDir, 'tokenizer_config.json'),
      JSON.stringify({ ...config, chat_template: template }),
    )
    const ours = await ourTokenizer(packageDir)
    expect(ours.chatTemplate).toBe(template)
    // transformers.js's template fails on text arguments ('Unknown StringValue filter: items'); ours
    // parses them (core/chat-template.ts), so it is given the objects they spell.
    const parsedArguments = (messages: readonly HuggingFaceMessage[]) =>
      messages.map((message) =>
        Array.isArray(message['tool_calls'])
          ? {
              ...message,
              tool_calls: (message['tool_calls'] as { function: { name: string; arguments: unknown } }[]).map(
                (call) => ({
                  ...call,
                  function: {
                    ...call.function,
                    arguments:
                      typeof call.function.arguments === 'string'
                        ? JSON.parse(call.function.arguments)
                        : call.function.arguments,
                  },
                }),
              ),
            }
          : message,
      )
    const theirs = await theirTokenizer(packageDir)
    expect(
      compareConversations(ours, theirs, await addedTokenTexts(packageDir), parsedArguments),
    ).toBeGreaterThan(100)
  })
})

// What the wire (and the SDK) takes that transformers.js's messages do not: ours renders it as the
// message OpenAI means. transformers.js hands a 'developer' role to the template, which Qwen3's
// drops without a word, and its render throws on an assistant's null content.
it('wire messages render as transformers.js renders what they mean: developer as system, null content as empty, text parts joined', async () => {
  const packageDir = await packageFolder('qwen3')
  const [ours, theirs] = [await ourTokenizer(packageDir), await theirTokenizer(packageDir)]
  const call = { id: 'c1', type: 'function', function: { name: 'add', arguments: '{"a": 1}' } }
  const wire = [
    { role: 'developer', content: 'Answer in French.' },
    {
      role: 'user',
      content: [
        { type: 'text', text: 'Add ' },
        { type: 'text', text: 'one.' },
      ],
    },
    { role: 'assistant', content: null, tool_calls: [call] },
    { role: 'tool', content: '1', tool_call_id: 'c1' },
  ] as unknown as ChatCompletionMessage[]
  const meant = [
    { role: 'system', content: 'Answer in French.' },
    { role: 'user', content: 'Add one.' },
    { role: 'assistant', content: '', tool_calls: [call] },
    { role: 'tool', content: '1', tool_call_id: 'c1' },
  ]
  const options = { add_generation_prompt: true, tools: promptTools }
  expect(ours.encodeChat(fromWireMessages(wire), { tools: promptTools as readonly ChatTool[] })).toEqual(
    theirs.apply_chat_template(meant, {
      ...options,
      tokenize: true,
      return_tensor: false,
      return_dict: false,
    }),
  )
  const asGiven = (messages: readonly unknown[]) => messages as HuggingFaceMessage[]
  expect(theirs.apply_chat_template(asGiven([wire[0], meant[1]]), { tokenize: false })).not.toContain(
    'French',
  )
  expect(() => theirs.apply_chat_template(asGiven([meant[1], wire[2], wire[3]]), options)).toThrow()
})

/**
 * transformers.js over a copy of the package with no added tokens: what a text is as plain text.
 * Ours spells a caller's control text that way, with the text around it up to the template's
 * own markers (Tokenizer.encodeChat).
 */
async function theirPlainTokenizer(packageDir: string): Promise<TheirTokenizer> {
  const plainDir = `${packageDir}-no-added-tokens`
  await mkdir(plainDir, { recursive: true })
  const tokenizer = JSON.parse(await readFile(join(packageDir, 'tokenizer.json'), 'utf8')) as object
  await writeFile(join(plainDir, 'tokenizer.json'), JSON.stringify({ ...tokenizer, added_tokens: [] }))
  const {
    added_tokens_decoder: _,
    additional_special_tokens: __,
    chat_template: ___,
    ...config
  } = JSON.parse(await readFile(join(packageDir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>
  await writeFile(join(plainDir, 'tokenizer_config.json'), JSON.stringify(config))
  return theirTokenizer(plainDir)
}

/**
 * Every corpus text holding an added token's text, as a user's turn: ours is the template's
 * opening markers, the turn's stretch as transformers.js spells it with no added tokens, the
 * closing markers as transformers.js encodes them.
 */
async function compareControlTextSpelling(
  ours: Tokenizer,
  theirs: TheirTokenizer,
  packageDir: string,
  turn: { opening: string; stretch: (content: string) => string; closing: string; generationPrompt: boolean },
): Promise<number> {
  const plain = await theirPlainTokenizer(packageDir)
  const added = await addedTokenTexts(packageDir)
  const opening = theirs.encode(turn.opening, { add_special_tokens: false })
  const closing = theirs.encode(turn.closing, { add_special_tokens: false })
  let compared = 0
  for (const content of widePromptTexts()) {
    if (!added.every.some((text) => content.includes(text))) continue
    const ids = ours.encodeChat([{ role: 'user', content }], { addGenerationPrompt: turn.generationPrompt })
    expect(ids, JSON.stringify(content.slice(0, 80))).toEqual([
      ...opening,
      ...plain.encode(turn.stretch(content), { add_special_tokens: false }),
      ...closing,
    ])
    compared++
  }
  return compared
}

describe.skipIf(!storiesPresent)('stories260K’s converted tokenizer against transformers.js', () => {
  let ours: Tokenizer
  let theirs: TheirTokenizer
  let packageDir: string
  beforeAll(async () => {
    packageDir = await packageFolder('stories260K')
    ours = await ourTokenizer(packageDir)
    theirs = await theirTokenizer(packageDir)
  })

  it('encodes, splits, decodes and streams the wide corpus and random ids the same way', () => {
    expect(compareTexts(ours, theirs)).toBeGreaterThan(4000)
    compareRandomIdStreams(ours, theirs)
  })

  // llama2.c's SentencePiece (as Llama 2's tokenizer.json) prepends '▁' to every stretch between
  // added tokens: encoded in pieces, a user's '</s>' got a space before it and one after it.
  it('spells a caller’s control text so too (under a template of ours)', async () => {
    const read = (name: string) => readFile(join(packageDir, name), 'utf8')
    const templated = Tokenizer.fromFiles({
      tokenizerJson: await read('tokenizer.json'),
      tokenizerConfigJson: await read('tokenizer_config.json'),
      chatTemplate: "{% for m in messages %}{{ '<s>' + m.content + '</s>' }}{% endfor %}",
    })
    const compared = await compareControlTextSpelling(templated, theirs, packageDir, {
      opening: '<s>',
      stretch: (content) => content,
      closing: '</s>',
      generationPrompt: false,
    })
    expect(compared).toBeGreaterThan(200)
  })
})
