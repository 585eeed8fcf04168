// README's privacy promise, checked the way a user runs us: the CLI (`generate`, `serve`, `chat`)
// and an SDK device-only answer, each under a system-call trace, must not look up a name or
// connect anywhere but loopback. The processes stay up past the time ONNX Runtime's native
// telemetry reports (about ten seconds after the first session: it resolves
// mobile.events.data.microsoft.com unless ORT_DISABLE_TELEMETRY is set), and the variable is
// removed from their environment, so only our own code can be what turns it off.
// The browser half (the demo page's requests) is in test/browser/demo.test.ts.
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { isOffMachine, stracePath, type TracedProcess, traceNetwork } from './network-trace.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))
const bin = fileURLToPath(new URL('../../cli/bin.js', import.meta.url))
// Past ORT's first telemetry report, with a margin for a slow, loaded machine.
const lingerMs = 15_000

/** The user's environment without any of the switches our code is supposed to set itself. */
function userEnvironment(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra }
  delete env.ORT_DISABLE_TELEMETRY
  return env
}

const started: TracedProcess[] = []
afterAll(() => {
  for (const traced of started) traced.kill('SIGKILL')
})

function start(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; stdin?: 'pipe' | 'ignore' } = {},
) {
  const traced = traceNetwork(process.execPath, args, {
    env: options.env ?? userEnvironment(),
    cwd: root,
    ...(options.stdin ? { stdin: options.stdin } : {}),
  })
  started.push(traced)
  return traced
}

async function waitFor(traced: TracedProcess, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const match = pattern.exec(traced.output())
    if (match) return match
    if (traced.child.exitCode !== null || Date.now() > deadline)
      throw new Error(`expected ${pattern} in the output:\n${traced.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('no connection the user did not configure', () => {
  it('the tracer sees a name lookup (the check can fail)', async () => {
    stracePath()
    const traced = start(['-e', "require('node:dns').lookup('ondevice-privacy-check.invalid', () => {})"])
    const { violations } = await traced.finish()
    expect(violations.length, traced.output()).toBeGreaterThan(0)
    expect(
      isOffMachine(
        'connect(3, {sa_family=AF_INET, sin_port=htons(8787), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
      ),
    ).toBe(false)
  })

  it('generate, serve (with requests over 127.0.0.1), chat and an SDK device-only answer make none', async () => {
    // All four at once: the wait for telemetry is paid once.
    const generate = start([bin, 'generate', '--prompt', 'Hi', '--max-tokens', '4'])
    const serve = start([bin, 'serve', '--port', '0', '--host', '127.0.0.1'], {
      env: userEnvironment({ API_KEYS: 'privacy-test-key-0123456789' }),
    })
    const chat = start([bin, 'chat', '--max-tokens', '4'], { stdin: 'pipe' })
    const sdk = start([fileURLToPath(new URL('sdk-device-answer.ts', import.meta.url)), String(lingerMs)])

    const [, url] = await waitFor(serve, /Listening on (http:\/\/127\.0\.0\.1:\d+)/, 120_000)
    const servedAt = Date.now()
    const headers = {
      authorization: 'Bearer privacy-test-key-0123456789',
      'content-type': 'application/json',
    }
    const models = (await (await fetch(`${url}/v1/models`, { headers })).json()) as { data: { id: string }[] }
    const model = models.data[0]?.id
    for (const stream of [false, true]) {
      const response = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, stream }),
      })
      expect(response.status).toBe(200)
      await response.text()
    }
    chat.child.stdin?.write('Hi\n')
    await sleep(Math.max(0, lingerMs - (Date.now() - servedAt)))
    chat.child.stdin?.end('/exit\n')

    const results = {
      generate: await generate.finish(),
      serve: await serve.finish({ kill: true }),
      chat: await chat.finish(),
      sdk: await sdk.finish(),
    }
    for (const [name, result] of Object.entries(results)) {
      const traced = { generate, serve, chat, sdk }[name as keyof typeof results]
      expect(result.violations, `${name} reached beyond loopback:\n${traced.output()}`).toEqual([])
    }
    expect(results.generate.code, generate.output()).toBe(0)
    expect(results.chat.code, chat.output()).toBe(0)
    expect(results.sdk.code, sdk.output()).toBe(0)
    expect(sdk.output()).toMatch(/"route":"device"/)
  }, 180_000)
})
