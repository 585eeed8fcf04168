// The Worker's second way to answer: forward to a container running `ondevice serve` (Cloudflare
// Containers on Cloudflare, Docker on this machine). Node-safe parts only: the Container class
// and its gateway import `cloudflare:workers` and load in a Workers bundle (worker/index.ts).
export { affinityHeader, affinityKey, instanceIndex } from './affinity.ts'
export {
  chooseRuntime,
  describeIsolateMemory,
  estimateIsolateMemory,
  type IsolateMemoryEstimate,
  isolateMemoryBytes,
  type RuntimeChoice,
  type RuntimeManifest,
  type WeightStreaming,
} from './choose-runtime.ts'
export {
  type ChatForwarder,
  type ContainerForwarderOptions,
  createContainerForwarder,
  instanceHeader,
} from './forward.ts'
export { type ContainerGateway, urlGateway } from './gateway.ts'
export {
  containerHealthBody,
  type InstanceHealth,
  type InstanceState,
  instanceHealthFromBody,
} from './health.ts'
export { createRuntimeRouter, type RuntimeRouter, type RuntimeRouterOptions } from './runtime-router.ts'
export {
  type ContainerSettings,
  containerSettingsFromEnv,
  type EdgeRuntime,
} from './settings.ts'
