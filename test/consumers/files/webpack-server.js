// A server module bundled for Node as a framework bundles a route handler (Next.js's
// `next build --webpack`): createClient() on the server with each backend Node has without
// onnxruntime-node, the embedded default package from the app's folder. Prints the answers as JSON.
import { createClient } from 'ondevice'

async function answer(backend) {
  const ai = createClient({ model: 'public/models/default', backend, policy: 'device-only' })
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
    }
  } catch (error) {
    return { error: String(error) }
  } finally {
    await ai.dispose()
  }
}

Promise.all([answer('wasm'), answer('ort-wasm')]).then(([wasm, ortWasm]) => {
  console.log(JSON.stringify({ wasm, 'ort-wasm': ortWasm }))
})
