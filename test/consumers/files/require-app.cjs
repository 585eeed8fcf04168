// A CommonJS user (a .cjs file, the machine's own Node): ondevice is ESM, and Node >= 20.19 loads
// it with require() (require(esm), unflagged there; the engines field's floor). Each entry a
// Node program uses, and a short answer on the embedded default through the required SDK.
const entries = [
  'ondevice',
  'ondevice/core',
  'ondevice/runtime',
  'ondevice/worker/node',
  'ondevice/builder',
  'ondevice/ai-sdk',
  'ondevice/vite',
  'ondevice/test',
]
const exported = {}
for (const entry of entries) exported[entry] = Object.keys(require(entry)).length
const { createClient } = require('ondevice')
const ai = createClient()
ai.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 2 }).then(async (answer) => {
  await ai.dispose()
  console.log(
    JSON.stringify({ exported, route: answer.route, completionTokens: answer.usage.completionTokens }),
  )
})
