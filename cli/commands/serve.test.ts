// `ondevice serve` as a user runs it: the real CLI in a child process on 127.0.0.1, no --model
// (the embedded default package, onnxruntime-node), the official `openai` client streaming from
// it, and a client that hangs up mid-stream stopping its generation and freeing the only slot.
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const apiKey = 'serve-test-key-0123456789'
const bin = fileURLToPath(new URL('../bin.js', import.meta.url))
let child: ChildProcess
let url: string
let output = ''
let model: string

beforeAll(async () => {
  child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--host', '127.0.0.1'], {
    env: { ...process.env, API_KEYS: apiKey, MAX_CONCURRENT: '1', MAX_QUEUE: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ondevice serve did not start:\n${output}`)), 170_000)
    const onData = (data: Buffer) => {
      output += data.toString()
      const match = /Listening on (http:\/\/127\.0\.0\.1:\d+) \(model ([^)]+)\)/.exec(output)
      if (match?.[1] && match[2]) {
        clearTimeout(timer)
        model = match[2]
        resolve(match[1])
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code) => reject(new Error(`ondevice serve exited with ${code}:\n${output}`)))
  })
}, 180_000)

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
  }
})

describe('ondevice serve', () => {
  it('serves the default package to the official openai client, streaming and not', async () => {
    expect(output).toMatch(/No --model: serving the embedded default model/)
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey })
    expect((await client.models.list()).data.map((entry) => entry.id)).toEqual([model])
    const request = {
      model,
      messages: [{ role: 'user' as const, content: 'Say hello.' }],
      max_tokens: 12,
      temperature: 0,
    }
    const whole = await client.chat.completions.create(request)
    expect(whole.system_fingerprint).toMatch(/:native$/)
    expect(whole.usage?.completion_tokens).toBe(12)
    let text = ''
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true }))
      text += chunk.choices[0]?.delta.content ?? ''
    expect(text).toBe(whole.choices[0]?.message.content)
    await expect(
      new OpenAI({ baseURL: `${url}/v1`, apiKey: 'wrong-key-0123456789' }).models.list(),
    ).rejects.toMatchObject({ status: 401 })
  })

  it('stops generating and frees the slot at once when the client hangs up mid-stream', async () => {
    const controller = new AbortController()
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model,
        messages: [{ role: 'user', content: 'Go on forever.' }],
        max_tokens: 2000,
        temperature: 0,
        stream: true,
      }),
      signal: controller.signal,
    })
    const reader = response.body!.getReader()
    let received = ''
    while (!received.includes('token_ids')) received += new TextDecoder().decode((await reader.read()).value)
    controller.abort()
    // One slot, no queue: the next request is refused (429) until the abandoned one has let go.
    const started = Date.now()
    let status = 0
    while (Date.now() - started < 5000) {
      const health = (await (await fetch(`${url}/healthz`)).json()) as { generations: { active: number } }
      if (health.generations.active === 0) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const next = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 }),
    })
    status = next.status
    expect(status).toBe(200)
    expect(Date.now() - started).toBeLessThan(5000)
    // Its log line: 499, aborted, far fewer tokens than asked for.
    const line = output.split('\n').find((text) => text.includes('"status":499'))
    expect(line, output).toContain('"errorCode":"aborted"')
    const completion = /"completionTokens":(\d+)/.exec(line ?? '')
    if (completion?.[1]) expect(Number(completion[1])).toBeLessThan(2000)
  })
})
