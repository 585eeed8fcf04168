// The character cap (MAX_PROMPT_CHARACTERS) counts the messages and the tools, over real HTTP
// (serveApp). A request over it because of its tools was told "The messages hold N characters
// ... Shorten the conversation" with param `messages`, though a one-word message would not fit
// either (found by an adversarial pass sending hundreds of tools): the refusal now names what
// holds the characters and what to shorten.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from './app.ts'
import { type RunningServer, serveApp } from './node.ts'

let server: RunningServer

beforeAll(async () => {
  const app = createApp({
    modelHost: createTestHost(),
    log: () => undefined,
    limits: { maxPromptCharacters: 2000 },
  })
  server = await serveApp({ app, port: 0 })
})

afterAll(async () => {
  await server.close()
})

async function refusal(
  body: Record<string, unknown>,
): Promise<{ param: string; message: string; code: string }> {
  const response = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'test-model', max_tokens: 2, ...body }),
  })
  const text = await response.text()
  expect(response.status, text.slice(0, 300)).toBe(400)
  return (JSON.parse(text) as { error: { param: string; message: string; code: string } }).error
}

const tools = Array.from({ length: 100 }, (_, index) => ({
  type: 'function',
  function: { name: `tool_${index}`, description: 'Looks something up.' },
}))

describe('over the character cap', () => {
  it('because of the tools: names tools and says to send fewer or shorter ones', async () => {
    const error = await refusal({ messages: [{ role: 'user', content: 'hi' }], tools })
    expect(error.code).toBe('context_length_exceeded')
    expect(error.param).toBe('tools')
    expect(error.message).toMatch(/the tools hold \d+ and the messages 2 characters/)
    expect(error.message).toMatch(/fewer or shorter tools/)
  })

  it('because of the messages: names messages, as before', async () => {
    const error = await refusal({ messages: [{ role: 'user', content: 'x'.repeat(2001) }] })
    expect(error.code).toBe('context_length_exceeded')
    expect(error.param).toBe('messages')
    expect(error.message).toMatch(/The messages hold 2001 characters; this server accepts at most 2000/)
    expect(error.message).toMatch(/Shorten the conversation/)
  })
})

describe('over the token limit (within the character cap)', () => {
  it('because of the tools: names tools, as the character cap does (it named messages)', async () => {
    const app = createApp({
      modelHost: createTestHost(),
      log: () => undefined,
      limits: { maxPromptTokens: 60, maxPromptCharacters: 100_000 },
    })
    const small = await serveApp({ app, port: 0 })
    try {
      const post = async (body: Record<string, unknown>) => {
        const response = await fetch(`${small.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'test-model', max_tokens: 2, ...body }),
        })
        const text = await response.text()
        expect(response.status, text.slice(0, 300)).toBe(400)
        return (JSON.parse(text) as { error: { param: string; message: string; code: string } }).error
      }
      const byTools = await post({ messages: [{ role: 'user', content: 'hi' }], tools: tools.slice(0, 10) })
      expect(byTools).toMatchObject({ code: 'context_length_exceeded', param: 'tools' })
      expect(byTools.message).toMatch(/of them the tools; this server accepts at most 60/)
      const byMessages = await post({ messages: [{ role: 'user', content: 'word '.repeat(200) }] })
      expect(byMessages).toMatchObject({ code: 'context_length_exceeded', param: 'messages' })
    } finally {
      await small.close()
    }
  })
})
