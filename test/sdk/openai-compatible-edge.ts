// An OpenAI-compatible server other than ours, served over HTTP on 127.0.0.1: it lists one model
// and answers every chat request with one scripted event stream of chat.completion.chunk objects
// (no usage unless the script writes it, no token ids unless a delta carries them), as servers
// that know nothing of ondevice's extensions do.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One `data:` event of a chat.completion.chunk with this delta and finish_reason. */
export type ChunkEvent = (delta: object, finishReason: string | null) => string

export interface OpenAICompatibleEdge {
  readonly url: string
  close(): Promise<void>
}

/** `script` writes the stream's events before `data: [DONE]`, which the server adds. */
export async function startOpenAICompatibleEdge(
  model: string,
  script: (chunk: ChunkEvent) => string,
): Promise<OpenAICompatibleEdge> {
  const chunk: ChunkEvent = (delta, finishReason) =>
    `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model, choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`
  const server = createServer((request, response) => {
    if (request.method === 'GET' && request.url === '/v1/models') {
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ object: 'list', data: [{ id: model, object: 'model' }] }))
      return
    }
    request.resume()
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'text/event-stream' })
      response.end(`${script(chunk)}data: [DONE]\n\n`)
    })
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    // A client that stopped reading may leave its connection open: close() does not wait for it.
    close: () => {
      server.closeAllConnections()
      return new Promise<void>((done) => server.close(() => done()))
    },
  }
}
