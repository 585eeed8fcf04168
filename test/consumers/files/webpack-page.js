// The page of docs/sdk.md's webpack config: on the device (the embedded default package, served
// beside it), a chat, a JSON answer to a schema and a required tool call (the structured-output
// compiler, a chunk webpack loads on demand), its result left on window for the test to read.
import { createClient } from 'ondevice'

// ?backend=ort-wasm runs onnxruntime-web's WASM from /ort/; ?threads=2 splits the engine's steps
// across a helper thread (a module Web Worker webpack emits as a chunk of its own).
const query = new URLSearchParams(location.search)
const backend = query.get('backend') ?? undefined
const threads = query.get('threads') ? { numThreads: Number(query.get('threads')) } : {}
const ai = createClient({
  model: '/models/default/',
  runtimeUrl: '/ort/',
  policy: 'device-only',
  backend,
  ...threads,
})
const messages = [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }]
try {
  // Greedy: the test compares the text with Node's answer to the same request.
  const answer = await ai.chat({ messages, maxTokens: 4, temperature: 0 })
  const schema = { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] }
  const json = await ai.chat({
    messages,
    responseFormat: { type: 'json_schema', schema },
    maxTokens: 24,
    seed: 1,
  })
  const city = { type: 'object', properties: { city: { enum: ['Paris', 'Oslo'] } }, required: ['city'] }
  const tool = await ai.chat({
    messages,
    tools: [{ name: 'get_weather', parameters: city }],
    toolChoice: 'required',
    maxTokens: 40,
    seed: 1,
  })
  window.result = {
    route: answer.route,
    backend: answer.usage.backend,
    completionTokens: answer.usage.completionTokens,
    text: answer.text,
    json: { route: json.route, value: JSON.parse(json.text) },
    tool: {
      route: tool.route,
      name: tool.toolCalls?.[0]?.name,
      arguments: JSON.parse(tool.toolCalls?.[0]?.arguments ?? 'null'),
    },
  }
} catch (error) {
  window.result = { error: String(error?.stack ?? error) }
}
