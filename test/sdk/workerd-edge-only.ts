// A Worker script for the workerd test: the SDK inside a Cloudflare Worker, edge-only (a Worker
// has no device), answering GET /chat by asking the edge at env.EDGE_URL. Not part of the
// package API; sdk/workerd.test.ts runs it under `wrangler dev`.
import { createClient } from '../../sdk/client.ts'

interface Env {
  readonly EDGE_URL: string
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url)
    if (url.pathname === '/healthz') return Response.json({ ok: true })
    const ai = createClient({ policy: 'edge-only', edge: { url: env.EDGE_URL } })
    try {
      const parts: unknown[] = []
      for await (const part of ai.stream({
        messages: [{ role: 'user', content: url.searchParams.get('q') ?? 'Hi' }],
        maxTokens: Number(url.searchParams.get('max') ?? 8),
        seed: 1,
      })) {
        parts.push(part)
      }
      return Response.json({ parts, status: await ai.status() })
    } catch (error) {
      return Response.json({ error: error instanceof Error ? error.message : String(error) }, { status: 500 })
    } finally {
      await ai.dispose()
    }
  },
}
