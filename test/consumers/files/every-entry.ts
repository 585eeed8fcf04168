// Every public entry point a Node or web project imports, used with its types, as a strict
// TypeScript project would. ondevice/worker (the Cloudflare Workers entry, whose declarations
// name Workers types) is checked in the wrangler project instead, with `wrangler types`.

import { type ChatResult, createClient, decideRoute, type OndeviceError } from 'ondevice'
import { createOndevice } from 'ondevice/ai-sdk'
import { writeFixture } from 'ondevice/builder'
import { encodeChatTurns, generate, type SamplingOptions, type Tokenizer } from 'ondevice/core'
import { type LoadedModel, loadModel } from 'ondevice/runtime'
import { createTestSession } from 'ondevice/test'
import { ondevice } from 'ondevice/vite'
import { createApp, createNodeModelHost } from 'ondevice/worker/node'

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
  void [decideRoute, writeFixture, app, provider, plugin, error, loaded]
  return result.text
}
