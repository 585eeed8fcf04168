// What the capability probe reads only in Node: memory, cores, and whether onnxruntime-node
// loads. Reached through '#runtime-node' (node-platform.ts), so a browser bundle never contains
// (or tries to resolve) a Node-only module.
import { availableParallelism, totalmem } from 'node:os'
import { defaultNodeBackend, nativeUnavailableReason } from './node-host.ts'

export interface NodeCapabilities {
  readonly deviceMemoryBytes: number
  readonly cores: number
  readonly native: boolean
  /** Why not, in words a person can act on (Node without the optional onnxruntime-node). */
  readonly nativeNote?: string
  /** The same for an app that forced backend 'native': what is missing and how to add it. */
  readonly nativeMissing?: string
}

/**
 * The memory this process may use: the machine's, or less where the OS caps the process (a
 * container's cgroup limit, which `totalmem()` does not see: a 6 GiB container on a 64 GiB host).
 */
export function processMemoryBytes(): number {
  const constrained = process.constrainedMemory?.() ?? 0
  return constrained > 0 ? Math.min(totalmem(), constrained) : totalmem()
}

export async function probeNodeCapabilities(): Promise<NodeCapabilities> {
  const { backend, note } = await defaultNodeBackend()
  const reason = await nativeUnavailableReason()
  return {
    deviceMemoryBytes: processMemoryBytes(),
    cores: availableParallelism(),
    native: backend === 'native',
    ...(note === undefined ? {} : { nativeNote: note }),
    ...(reason === undefined
      ? {}
      : {
          nativeMissing: `onnxruntime-node is not available here (${reason}): \`npm install onnxruntime-node\`, or use backend 'wasm'`,
        }),
  }
}
