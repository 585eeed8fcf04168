// The answer the Node runtime gives for a chat on a WebAssembly backend: 'wasm' (ondevice's engine,
// the same bits in Node, Chromium and workerd: what the demo's device, its edge and a handoff must
// equal) or 'ort-wasm' (onnxruntime-web's kernels, which Chromium's WebGPU answer is held to).
import { loadModel } from '../../client-runtime/index.ts'
import type { ChatMessage } from '../../core/chat-template.ts'
import { encodeChatTurns } from '../../core/chat-turns.ts'
import { generate } from '../../core/generate.ts'
import type { SamplingOptions } from '../../core/sampling/index.ts'

export interface ReferenceRequest {
  readonly messages: readonly ChatMessage[]
  readonly maxTokens: number
  readonly sampling: SamplingOptions
}

export interface ReferenceAnswer {
  readonly text: string
  readonly tokenIds: readonly number[]
}

/** Loads the package once on Node WASM and answers each request from a fresh cache. */
export async function nodeReferenceAnswers(
  packageDirectory: string,
  dtype: string,
  requests: readonly ReferenceRequest[],
  backend: 'wasm' | 'ort-wasm' = 'wasm',
): Promise<ReferenceAnswer[]> {
  const model = await loadModel({ model: packageDirectory, backend, dtype })
  try {
    const answers: ReferenceAnswer[] = []
    for (const request of requests) {
      await model.session.reset()
      // Chunked at the turn boundaries, as the SDK's device and the edge prefill it.
      const prompt = encodeChatTurns(model.tokenizer, request.messages, { addGenerationPrompt: true })
      let answer: ReferenceAnswer | undefined
      for await (const part of generate(model.session, model.tokenizer, {
        promptTokenIds: prompt.tokenIds,
        promptBoundaries: prompt.turnBoundaries,
        sampling: request.sampling,
        maxTokens: request.maxTokens,
      })) {
        if (part.type === 'finish') answer = { text: part.text, tokenIds: part.tokenIds }
      }
      if (answer === undefined) throw new Error('The Node reference run ended without a finish part.')
      answers.push(answer)
    }
    return answers
  } finally {
    await model.dispose()
  }
}
