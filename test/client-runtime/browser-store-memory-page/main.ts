// The page the store's memory test drives: one download by the store in a dedicated Web Worker,
// as the SDK's model worker runs it.
;(globalThis as unknown as { download: (source: string) => Promise<unknown> }).download = (source) =>
  new Promise((resolve) => {
    const worker = new Worker(new URL('./store-worker.ts', import.meta.url), { type: 'module' })
    worker.onmessage = (event) => resolve(event.data)
    worker.postMessage({ source })
  })
