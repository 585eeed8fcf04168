// The entry of the dedicated Web Worker that holds the on-device model in a browser. It only
// imports the worker's body (device-worker-host.ts), so that no chunk of an app's build imports
// this entry: bundlers put code shared by a worker's entry and its dynamic imports into the
// entry's chunk, and WebKit (measured: WebKitGTK 2.50) evaluates a module worker's entry script a
// second time when a chunk imports it. The model worker then served the page twice: every answer
// streamed each token twice, and a request could reach the copy still loading the model ("This
// model is not loaded in the worker").
import('./device-worker-host.ts').catch((error: unknown) => {
  // Thrown from a task of its own, the failure reaches the page as the Worker's error event, which
  // createBrowserDeviceHost reports ("ondevice's model worker did not start (...)").
  setTimeout(() => {
    throw error
  })
})
