// A user's Node script (plain JavaScript, the machine's own Node): an answer on the embedded
// default model, then a streamed one, then the shared core's tokenizer on the exported package.
import { readFileSync } from 'node:fs'
import { createClient } from 'ondevice'
import { Tokenizer } from 'ondevice/core'

const ai = createClient()
const answer = await ai.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 4 })
let deltas = 0
let finish
for await (const part of ai.stream({ messages: [{ role: 'user', content: 'Hello' }], maxTokens: 4 })) {
  if (part.type === 'text-delta') deltas += 1
  if (part.type === 'finish') finish = part
}
await ai.dispose()
// Forcing the native backend: runs where onnxruntime-node is installed, else says how to add it.
const forced = createClient({ backend: 'native', policy: 'device-only' })
const nativeError = await forced.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 1 }).then(
  () => null,
  (error) => error.message,
)
await forced.dispose()
const tokenizer = Tokenizer.fromFiles({
  tokenizerJson: readFileSync('model/tokenizer.json', 'utf8'),
  tokenizerConfigJson: readFileSync('model/tokenizer_config.json', 'utf8'),
})
console.log(
  JSON.stringify({
    route: answer.route,
    backend: answer.usage.backend,
    reason: answer.routeReason,
    completionTokens: answer.usage.completionTokens,
    deltas,
    streamFinish: finish?.finishReason,
    nativeError,
    ids: tokenizer.encode('Hello, my dog is cute.'),
  }),
)
