// Every public entry point a Node or web project imports, used with its types, as a strict
// TypeScript project would. ondevice/worker (the Cloudflare Workers entry, whose declarations
// name Workers types) is checked in the wrangler project instead, with `wrangler types`.

import { type ChatResult, createClient, decideRoute, type OndeviceError } from 'ondevice'
import { createOndevice } from 'ondevice/ai-sdk'
import { writeFixture } from 'ondevice/builder'
import { encodeChatTurns, generate, type SamplingOptions, type Tokenizer } from 'ondevice/core'
import { type LoadedModel, loadModel, openOrtModel, type PackageReader } from 'ondevice/runtime'
import { createTestSession } from 'ondevice/test'
import { ondevice } from 'ondevice/vite'
import { createApp, createNodeModelHost } from 'ondevice/worker/node'
import * as ortNode from 'onnxruntime-node'
import * as ortWeb from 'onnxruntime-web'

export async function useEverything(tokenizer: Tokenizer): Promise<string> {
  const client = createClient({ model: '/models/default/', policy: 'prefer-device' })
  const result: ChatResult = await client.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 4 })
  const sampling: SamplingOptions = { temperature: 0.7, seed: 1 }
  const prompt = encodeChatTurns(tokenizer, [{ role: 'user', content: 'Hi' }], { enableThinking: false })
  const session = createTestSession({ vocabularySize: tokenizer.vocabularySize })
  for await (const part of generate(session, tokenizer, {
    promptTokenIds: prompt.tokenIds,
    sampling,
    maxTokens: 2,
  })) {
    if (part.type === 'text-delta') console.log(part.text)
  }
  const loaded: LoadedModel = await loadModel({ model: './model' })
  const app = createApp({ modelHost: createNodeModelHost({ model: './model' }) })
  const provider = createOndevice({ model: '/models/default/' })
  const plugin = ondevice({ runtimeUrl: '/ort/' })
  const error: OndeviceError | undefined = undefined
  // onnxruntime's own modules and session options, as a host with bytes of its own passes them
  // (ondevice's declarations describe the module without onnxruntime's types).
  const sessionOptions: ortWeb.InferenceSession.SessionOptions = { executionProviders: ['wasm'] }
  const openBoth = (reader: PackageReader) =>
    Promise.all([
      openOrtModel(ortWeb, reader, { backend: 'ort-wasm', dtype: 'q4', sessionOptions }),
      openOrtModel(ortNode, reader, { backend: 'native', dtype: 'q8' }),
    ])
  void [decideRoute, writeFixture, app, provider, plugin, error, loaded, openBoth]
  return result.text
}
