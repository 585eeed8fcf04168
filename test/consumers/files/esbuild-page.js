// The page's script of docs/sdk.md's esbuild recipe: one short answer on the device (the
// embedded default package, served beside it), its result left on window for the test to read.
import { createClient } from 'ondevice'

// ?backend=ort-wasm runs onnxruntime-web's WASM from /ort/ (the files the recipe copies);
// ?threads=2 starts the engine's helper thread (the recipe's thread-worker-browser.js).
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
try {
  // Greedy: the test compares the text with Node's answer to the same request.
  const answer = await ai.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 4, temperature: 0 })
  // A JSON answer: the structured-output code, which the SDK imports on demand, is in the bundle.
  const json = await ai.chat({
    messages: [{ role: 'user', content: 'Hi' }],
    responseFormat: { type: 'json_object' },
    maxTokens: 4,
  })
  window.result = {
    route: answer.route,
    backend: answer.usage.backend,
    completionTokens: answer.usage.completionTokens,
    text: answer.text,
    json: { route: json.route, start: json.text.slice(0, 1) },
  }
} catch (error) {
  window.result = { error: String(error?.message ?? error) }
}
