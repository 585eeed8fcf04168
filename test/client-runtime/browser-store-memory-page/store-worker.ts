// Downloads and verifies one large weights file into OPFS and reads nothing of it afterwards, so
// the worker's memory at the end is the download's and the check's alone.
import { createBrowserStore } from '../../../client-runtime/store/browser-store.ts'

self.onmessage = async (event: MessageEvent<{ source: string }>) => {
  const store = createBrowserStore({
    backend: 'opfs',
    name: 'memory',
    downloadRetries: 0,
    onWarning: () => undefined,
  })
  try {
    const pkg = await store.open(event.data.source)
    await pkg.ensure(['onnx/model.onnx'])
    postMessage({ cached: await store.isCached(event.data.source, ['onnx/model.onnx']) })
  } catch (error) {
    postMessage({ error: { name: (error as Error).name, message: (error as Error).message } })
  }
}
