// A chat prompt with the positions where its turns start. The generation loop prefills a prompt in
// chunks cut at these positions and the session keeps its state at each cut, so the next turn of
// the same conversation resumes from the last cut instead of re-running the conversation. That
// matters most for Qwen3.5, whose recurrent state can only go back to a saved point.
//
// The cuts are a function of the token ids alone, read left to right, so a conversation and any
// continuation of it are cut the same way up to where they differ: a turn resumed from the cache
// and a cold run of the whole conversation (on the device, or on the edge after a handoff) feed
// the model the same chunks. With dynamic int8 weights (q8) logits depend on the chunking, so this
// is what keeps a resumed turn and a handoff exact.
import type { ChatMessage } from './chat-template.ts'
import type { ApplyChatTemplateOptions, EncodeOptions } from './tokenizer.ts'

/** What chat prompts need from a tokenizer (core's Tokenizer has it). */
export interface ChatEncoder {
  encodeChat(messages: readonly ChatMessage[], options?: ApplyChatTemplateOptions): number[]
  applyChatTemplate(messages: readonly ChatMessage[], options?: ApplyChatTemplateOptions): string
  encode(text: string, options?: EncodeOptions): number[]
  isSpecialToken(id: number): boolean
}

export interface ChatPrompt {
  /** The prompt token ids, exactly `encodeChat(messages, options)`. */
  readonly tokenIds: number[]
  /** Increasing positions inside the prompt where a turn starts; pass them to generate() as `promptBoundaries`. */
  readonly turnBoundaries: number[]
}

/**
 * Fewest tokens between two cuts, except before an assistant turn. Each chunk is one run of the
 * model, which on a large model costs at least a full read of its weights, so short messages
 * (tool results, "ok") join the next chunk.
 */
export const MIN_CHUNK_TOKENS = 16

/**
 * Encodes a chat and cuts it where turns start: before every assistant turn (the template's
 * generation prompt opens with the same tokens, so where this prompt's answer starts is a cut in
 * every later turn of the conversation, and the next turn resumes exactly there), and before any
 * other turn at least MIN_CHUNK_TOKENS after the previous cut (so a shared system prompt is a
 * resume point too). A turn starts with the generation prompt's first token when that is a special
 * token (`<|im_start|>` in ChatML); a template whose turns open with plain text gets no cuts, and
 * its prompt is one chunk.
 */
export function encodeChatTurns(
  tokenizer: ChatEncoder,
  messages: readonly ChatMessage[],
  options: ApplyChatTemplateOptions = {},
): ChatPrompt {
  const tokenIds = tokenizer.encodeChat(messages, options)
  const opening = assistantOpening(tokenizer, messages, options)
  const turnBoundaries: number[] = []
  if (opening === undefined) return { tokenIds, turnBoundaries }
  const [turnStart, assistantRole] = opening
  let last = 0
  for (let position = 1; position < tokenIds.length; position++) {
    if (tokenIds[position] !== turnStart) continue
    if (tokenIds[position + 1] === assistantRole || position - last >= MIN_CHUNK_TOKENS) {
      turnBoundaries.push(position)
      last = position
    }
  }
  return { tokenIds, turnBoundaries }
}

/**
 * The first two tokens of the template's generation prompt (`<|im_start|>`, `assistant`), when
 * the first is a special token.
 */
function assistantOpening(
  tokenizer: ChatEncoder,
  messages: readonly ChatMessage[],
  options: ApplyChatTemplateOptions,
): readonly [number, number] | undefined {
  const history = tokenizer.applyChatTemplate(messages, { ...options, addGenerationPrompt: false })
  const withPrompt = tokenizer.applyChatTemplate(messages, { ...options, addGenerationPrompt: true })
  if (withPrompt.length <= history.length || !withPrompt.startsWith(history)) return undefined
  const [first, second] = tokenizer.encode(withPrompt.slice(history.length), { addSpecialTokens: false })
  if (first === undefined || second === undefined || !tokenizer.isSpecialToken(first)) return undefined
  return [first, second]
}
