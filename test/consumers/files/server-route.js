// A server module bundled for Node as a framework bundles a route handler (Next.js's
// `next build --webpack`: webpack's target 'node') or as a server is bundled for a deploy
// (esbuild --platform=node): createClient() on the server with each backend Node has without
// onnxruntime-node, the embedded default package from the app's folder, and without `model` (the
// embedded default ondevice writes into its cache folder), and 'wasm' with two threads (the
// engine's helper threads start from a script of the installed package). Prints the answers as JSON.
import { createClient } from 'ondevice'

async function answer(backend, model = 'public/models/default', numThreads = 1) {
  const ai = createClient({ ...(model ? { model } : {}), backend, numThreads, policy: 'device-only' })
  try {
    const result = await ai.chat({
      messages: [{ role: 'user', content: 'Hi' }],
      maxTokens: 4,
      temperature: 0,
    })
    return {
      route: result.route,
      backend: result.usage.backend,
      completionTokens: result.usage.completionTokens,
      text: result.text,
    }
  } catch (error) {
    return { error: String(error) }
  } finally {
    await ai.dispose()
  }
}

Promise.all([answer('wasm'), answer('ort-wasm'), answer('wasm', null), answer('wasm', undefined, 2)]).then(
  ([wasm, ortWasm, embedded, wasmThreads]) => {
    console.log(JSON.stringify({ wasm, 'ort-wasm': ortWasm, embedded, 'wasm numThreads 2': wasmThreads }))
  },
)
