// What the capability probe reads only in Node: memory, cores, and whether onnxruntime-node
// loads. Reached through '#runtime-node' (node-platform.ts), so a browser bundle never contains
// (or tries to resolve) a Node-only module.
import { availableParallelism, totalmem } from 'node:os'
import { disableOrtTelemetry } from './ort-telemetry.ts'

export interface NodeCapabilities {
  readonly deviceMemoryBytes: number
  readonly cores: number
  readonly native: boolean
}

export async function probeNodeCapabilities(): Promise<NodeCapabilities> {
  disableOrtTelemetry()
  const native = await import('onnxruntime-node').then(
    () => true,
    () => false,
  )
  return { deviceMemoryBytes: totalmem(), cores: availableParallelism(), native }
}
