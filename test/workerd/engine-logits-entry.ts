// A test-only Worker entry: worker/index.ts as it ships, plus one route the tests use to read the
// engine's raw logits in workerd (never part of the product, which has no such route). The logits
// come from the same precompiled engine-relaxed.wasm (wrangler's CompiledWasm rule, engineModuleForWorkerd)
// and the same verified package reader (weights streamed from R2 in checked ranges) and engine
// session the entry's model host uses, over the package in local R2; the test compares their
// bytes with Node's engine.
import type { ExecutionContext } from 'hono'
import { packageWeightReader } from '../../wasm/engine/package-files.ts'
import { createEngineSession } from '../../wasm/engine/session.ts'
import { engineModuleForWorkerd } from '../../wasm/engine/workerd.ts'
import entry, { type WorkerEnv } from '../../worker/index.ts'
import { r2PackageReader, verifyPackage } from '../../worker/package-sources.ts'
import { type EngineLogitsRequest, engineLogitsPath } from './engine-logits-route.ts'

async function engineLogits(request: EngineLogitsRequest, env: WorkerEnv): Promise<Response> {
  if (!env.MODEL_BUCKET) return new Response('no MODEL_BUCKET', { status: 500 })
  const prefix = String(env.MODEL_PREFIX ?? 'model/')
  const { reader } = await verifyPackage(r2PackageReader(env.MODEL_BUCKET, prefix), {
    source: `r2:${prefix}`,
  })
  const session = await createEngineSession({
    module: engineModuleForWorkerd(),
    files: packageWeightReader(reader),
    dtype: request.dtype,
  })
  try {
    const rows = [await session.append([...request.prompt])]
    for (const token of request.steps) rows.push(await session.append([token]))
    const bytes = new Uint8Array(rows.reduce((sum, row) => sum + row.byteLength, 0))
    let offset = 0
    for (const row of rows) {
      bytes.set(new Uint8Array(row.buffer, row.byteOffset, row.byteLength), offset)
      offset += row.byteLength
    }
    return new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } })
  } finally {
    await session.dispose()
  }
}

export default {
  async fetch(request: Request, env: WorkerEnv, context: ExecutionContext): Promise<Response> {
    if (request.method === 'POST' && new URL(request.url).pathname === engineLogitsPath)
      return engineLogits((await request.json()) as EngineLogitsRequest, env)
    return entry.fetch(request, env, context)
  },
}
