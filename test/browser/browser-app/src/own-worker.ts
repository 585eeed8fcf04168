// A client on the app's own model worker (createBrowserDeviceHost({ worker })), loaded with
// import() when the test asks for it, so the page's up-front JavaScript stays the recipe's.
import { createBrowserDeviceHost, createClient } from 'ondevice'

export async function ownWorkerAnswer(): Promise<{ route: string; text: string }> {
  const deviceHost = await createBrowserDeviceHost({
    worker: () => new Worker(new URL('./model-worker.ts', import.meta.url), { type: 'module' }),
  })
  const client = createClient(
    { model: '/models/default/', runtimeUrl: '/ort/', policy: 'device-only' },
    { deviceHost },
  )
  try {
    const answer = await client.chat({
      messages: [{ role: 'user', content: 'Hi' }],
      maxTokens: 4,
      temperature: 0,
    })
    return { route: answer.route, text: answer.text }
  } finally {
    await client.dispose()
    deviceHost.close()
  }
}
