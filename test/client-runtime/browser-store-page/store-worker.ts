// The browser store in a dedicated Web Worker, where the SDK's model worker runs it: downloads one
// package's weights and posts its progress, then the result (or the error as name + code).
import { createBrowserStore } from '../../../client-runtime/store/browser-store.ts'

self.onmessage = async (event: MessageEvent<{ source: string }>) => {
  const store = createBrowserStore({
    backend: 'opfs',
    name: 'test-worker',
    downloadRetries: 0,
    onWarning: () => undefined,
  })
  try {
    const pkg = await store.open(event.data.source)
    await pkg.ensure(['onnx/model.onnx'], {
      onProgress: (progress) => postMessage({ progress: progress.fileLoadedBytes }),
    })
    const bytes = await pkg.readBytes('onnx/model.onnx')
    postMessage({
      done: {
        length: bytes.length,
        checksum: bytes.reduce((sum, value) => (sum * 31 + value) % 1_000_003, 0),
      },
    })
  } catch (error) {
    postMessage({
      error: {
        name: (error as Error).name,
        code: (error as { code?: string }).code,
        message: (error as Error).message,
      },
    })
  }
}
