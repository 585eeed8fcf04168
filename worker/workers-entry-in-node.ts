// What `import 'ondevice/worker'` gives in Node (package.json's "node" condition, after "workerd"
// and "worker", so a Workers bundle never picks it). The Workers entry imports WebAssembly the way
// wrangler bundles it, and Node would fail on it with "Cannot find package 'env'"; this says which
// entry to use instead.
import { OndeviceError } from '../core/errors.ts'

throw new OndeviceError(
  'unsupported',
  "ondevice/worker is the Cloudflare Workers entry (wrangler bundles it; it imports WebAssembly modules Node cannot load). In Node, import 'ondevice/worker/node' (createApp, createNodeModelHost, serveApp) or run `npx ondevice serve`.",
)
