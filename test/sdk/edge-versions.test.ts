// Version skew between the SDK and the edge, over real HTTP: this SDK against an edge deployed
// from an older ondevice (a web app upgraded before its Worker was redeployed), and an older SDK
// against this edge. The older side is the real thing: the repository's own history at the last
// commit before `ondevice_format`, unpacked with `git archive` and run as `ondevice serve` (the
// same app and validator a Worker of that version runs) or imported (its SDK's edge client); and
// the last commit before structured output, for what the app itself asks (responseFormat, tools).
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { createRuntimeDeviceHost } from '../../client-runtime/device-host/index.ts'
import { createNodeStore } from '../../client-runtime/store/node-store.ts'
import { OndeviceError } from '../../core/errors.ts'
import type { GenerationPart } from '../../core/stream-parts.ts'
import { createClient } from '../../sdk/client.ts'
import { type EdgeChatRequest, EdgeClient } from '../../sdk/edge-client.ts'
import { type ServeProcess, startServeProcess } from '../cli/serve-process.ts'
import { type Faults, withFaults } from './test-device-host.ts'

// The last commit before ondevice_format (4e7f3dd): its validator refuses every unknown field.
const beforeFormatCommit = 'a1c9b7c338470d026143ce11dea24cb60e8caaf8'
// The last commit before structured output (b7d3911): response_format refused, tools not enforced.
const beforeStructuredCommit = '349431e5449c2abb1d724d5095a17c11d6a8a7ec'
const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url))
const apiKey = 'edge-versions-key-0123456789'
const modelId = 'qwen3-tiny'
const request = {
  messages: [{ role: 'user' as const, content: 'Tell me about the sea.' }],
  temperature: 1,
  seed: 11,
  maxTokens: 12,
}

let directory: string
let packageDir: string
let oldTree: string
let oldEdge: ServeProcess
let olderEdge: ServeProcess
let newEdge: ServeProcess

function startServe(bin: string, label: string): Promise<ServeProcess> {
  return startServeProcess({
    bin,
    label,
    args: ['--model', packageDir, '--port', '0'],
    env: { API_KEYS: apiKey },
    timeoutMs: 110_000,
  })
}

function chatRequests(server: ServeProcess): number {
  return server
    .output()
    .split('\n')
    .filter((line) => line.includes('"path":"/v1/chat/completions"')).length
}

/** The repository's sources at `commit` in `tree`, with this checkout's node_modules (its dependencies ran them). */
function hasCommit(commit: string): boolean {
  try {
    execFileSync('git', ['-C', repositoryRoot, 'cat-file', '-e', `${commit}^{commit}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

async function unpack(commit: string, tree: string): Promise<void> {
  // A shallow clone lacks it: ask the clone's origin for that commit once (a local or reachable one).
  if (!hasCommit(commit)) {
    try {
      execFileSync('git', ['-C', repositoryRoot, 'fetch', '--quiet', 'origin', commit], {
        stdio: 'ignore',
        timeout: 60_000,
      })
    } catch {
      // Reported below.
    }
  }
  if (!hasCommit(commit)) {
    throw new Error(
      `This test runs ondevice serve from commit ${commit}, which this clone lacks: fetch the full history (git fetch --unshallow).`,
    )
  }
  await mkdir(tree)
  const archive = execFileSync('git', ['-C', repositoryRoot, 'archive', '--format=tar', commit], {
    maxBuffer: 256 * 1024 * 1024,
  })
  execFileSync('tar', ['-x', '-C', tree], { input: archive })
  await symlink(join(repositoryRoot, 'node_modules'), join(tree, 'node_modules'))
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ondevice-edge-versions-'))
  packageDir = join(directory, modelId)
  oldTree = join(directory, 'before-format')
  const olderTree = join(directory, 'before-structured-output')
  await Promise.all([unpack(beforeFormatCommit, oldTree), unpack(beforeStructuredCommit, olderTree)])
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: ['q4', 'q8'] })
  // All answer in their default format, q4 on onnxruntime-node.
  ;[oldEdge, olderEdge, newEdge] = await Promise.all([
    startServe(join(oldTree, 'cli/bin.js'), 'ondevice serve from before ondevice_format'),
    startServe(join(olderTree, 'cli/bin.js'), 'ondevice serve from before structured output'),
    startServe(join(repositoryRoot, 'cli/bin.js'), 'ondevice serve'),
  ])
}, 180_000)

afterAll(async () => {
  await Promise.all([oldEdge?.stop(), olderEdge?.stop(), newEdge?.stop()])
  if (directory) await rm(directory, { recursive: true, force: true })
})

/** A device on ondevice's engine in q8 (not what either edge runs), failing at token k when asked. */
function deviceClient(
  edgeUrl: string,
  faults: Faults = {},
  policy: 'prefer-device' | 'prefer-edge' = 'prefer-device',
) {
  return createClient(
    {
      policy,
      model: packageDir,
      backend: 'wasm',
      dtype: 'q8',
      edge: { url: edgeUrl, apiKey },
      // A 2-core CI box runs this tiny fixture slowly; the probe must not send it to the edge.
      thresholds: { minDeviceTokensPerSecond: 1 },
    },
    {
      deviceHost: createRuntimeDeviceHost({
        store: createNodeStore({ cacheDir: join(directory, 'device-cache') }),
        wrapSession: (session) => withFaults(session, faults),
      }),
    },
  )
}

async function collect(parts: AsyncIterable<GenerationPart>): Promise<{ text: string; tokenIds: number[] }> {
  let text = ''
  for await (const part of parts) {
    if (part.type === 'finish') return { text: part.text, tokenIds: [...part.tokenIds] }
    text += part.text
  }
  throw new Error(`the stream ended without a finish after ${JSON.stringify(text)}`)
}

describe('this SDK against an edge from before ondevice_format', () => {
  it('the older edge refuses a handoff that names the device format: 400, the unknown field named', async () => {
    const response = await fetch(`${oldEdge.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({
        model: modelId,
        messages: request.messages,
        max_tokens: 4,
        ondevice_continuation: { token_ids: [9707, 11], step: 2 },
        ondevice_format: { dtype: 'q8', backend: 'wasm', fallback: true },
      }),
    })
    expect(response.status).toBe(400)
    expect(await response.json()).toEqual({
      error: {
        message:
          'Unknown field "ondevice_format": remove it (see the OpenAI chat-completions reference for the fields).',
        type: 'invalid_request_error',
        param: 'ondevice_format',
        code: 'invalid_argument',
      },
    })
  })

  it('a device that fails at token k is continued there in its own format: asked again without the field, and the answer says so', async () => {
    const k = 4
    const before = chatRequests(oldEdge)
    const client = deviceClient(oldEdge.url, { failAtToken: k })
    const result = await client.chat(request)
    await client.dispose()
    expect(result.route).toBe('device+edge')
    expect(result.handoff?.completedTokens).toBe(k)
    expect(result.usage).toMatchObject({ dtype: 'q8+q4', backend: 'wasm+native', completionTokens: 12 })
    expect(result.usage.routeReason).toMatch(
      /; handed off to the edge after 4 tokens: .*; the edge at http:\/\/127\.0\.0\.1:\d+ runs an ondevice older than this SDK: it refused ondevice_format as unknown, so it was asked again without ondevice_format and answered in its own format, not q8 on wasm; redeploy the edge for an exact continuation$/,
    )
    // Two requests: the refused one and the same request without ondevice_format.
    await expect.poll(() => chatRequests(oldEdge) - before).toBe(2)
    // The rest is exactly what that edge answers to the continuation without the field.
    const rest = await collect(
      new EdgeClient({ url: oldEdge.url, apiKey }).stream({
        messages: request.messages,
        sampling: { temperature: 1, seed: 11 },
        maxTokens: request.maxTokens - k,
        continuation: { tokenIds: result.tokenIds.slice(0, k), step: k },
      }),
    )
    expect(result.tokenIds.slice(k)).toEqual(rest.tokenIds)
    expect(result.text.endsWith(rest.text)).toBe(true)
    // The edge logs a request when its answer ends, after the client has it: wait for this one's
    // line, so the next test's count does not start before it (a loaded CI run counted it there).
    await expect.poll(() => chatRequests(oldEdge) - before).toBe(3)
  }, 60_000)

  it('a request for an exact format (no fallback) fails once, saying to redeploy the edge; nothing is dropped silently', async () => {
    const before = chatRequests(oldEdge)
    const exact: EdgeChatRequest = {
      messages: request.messages,
      maxTokens: 4,
      continuation: { tokenIds: [9707, 11], step: 2 },
      format: { dtype: 'q8', backend: 'wasm' },
    }
    const error = await collect(new EdgeClient({ url: oldEdge.url, apiKey }).stream(exact)).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(OndeviceError)
    expect(error).toMatchObject({ code: 'unsupported', param: 'format', isRetryable: false })
    expect((error as Error).message).toBe(
      `The edge at ${oldEdge.url} runs an ondevice older than this SDK: it refused ondevice_format as unknown (it answered: Unknown field "ondevice_format": remove it (see the OpenAI chat-completions reference for the fields)), so it cannot be asked to answer in q8 on wasm. Redeploy the edge from this version of ondevice (wrangler deploy for a Worker, a new image or ondevice serve for a container), or set format.fallback: true to accept its own format.`,
    )
    await expect.poll(() => chatRequests(oldEdge) - before).toBe(1)
  })

  it('a malformed format is refused here, before any request (a refusal of the field then always means an older edge)', async () => {
    const before = chatRequests(oldEdge)
    const client = new EdgeClient({ url: oldEdge.url, apiKey, model: modelId })
    await expect(
      collect(client.stream({ messages: request.messages, format: { dtype: 'q3', fallback: true } })),
    ).rejects.toMatchObject({ code: 'invalid_argument', param: 'format.dtype' })
    await expect(collect(client.stream({ messages: request.messages, format: {} }))).rejects.toMatchObject({
      code: 'invalid_argument',
      param: 'format',
    })
    expect(chatRequests(oldEdge) - before).toBe(0)
  })
})

describe('this SDK against an edge from before structured output: what the app asks is never dropped', () => {
  const weather = {
    name: 'get_weather',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' } },
      required: ['city'],
      additionalProperties: false,
    },
  }

  it('responseFormat: refused there, and the error says to redeploy the edge', async () => {
    const client = createClient({ policy: 'edge-only', edge: { url: olderEdge.url, apiKey } })
    const error = await client.chat({ ...request, responseFormat: { type: 'json_object' } }).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    await client.dispose()
    expect(error).toMatchObject({ code: 'unsupported', param: 'responseFormat', isRetryable: false })
    expect((error as Error).message).toBe(
      `The edge at ${olderEdge.url} cannot enforce responseFormat (it answered: response_format "json_object" is not supported: only { type: "text" }. Ask for JSON in the prompt instead): it runs an ondevice older than structured output. Redeploy the edge from this version of ondevice, or let the device answer this request.`,
    )
    // With a device to fall back on (prefer-edge), the device answers it, enforced.
    const withDevice = deviceClient(olderEdge.url, {}, 'prefer-edge')
    const answer = await withDevice.chat({
      ...request,
      maxTokens: 24,
      responseFormat: { type: 'json_object' },
    })
    await withDevice.dispose()
    expect(answer.route).toBe('device')
    expect(answer.usage.routeReason).toContain('cannot enforce responseFormat')
    expect(answer.text.startsWith('{')).toBe(true)
  }, 60_000)

  it('a required tool call: that edge answers in text without one, which fails instead of passing for an answer', async () => {
    const client = createClient({ policy: 'edge-only', edge: { url: olderEdge.url, apiKey } })
    const parts: string[] = []
    for await (const part of client.stream({
      ...request,
      maxTokens: 4,
      tools: [weather],
      toolChoice: 'required',
    })) {
      parts.push(part.type)
      if (part.type === 'error') {
        expect(part.error).toMatchObject({ code: 'unsupported', param: 'toolChoice', isRetryable: false })
        expect(part.error.message).toMatch(
          /answered without the tool call toolChoice requires \(finish reason length\): it does not enforce tools/,
        )
      }
    }
    await client.dispose()
    expect(parts[0]).toBe('route')
    expect(parts.at(-1)).toBe('error')
    expect(parts).not.toContain('finish')
    // This edge, the same request: enforced, so cut at 4 tokens inside the call it must make.
    const current = createClient({ policy: 'edge-only', edge: { url: newEdge.url, apiKey } })
    const answer = await current.chat({ ...request, maxTokens: 4, tools: [weather], toolChoice: 'required' })
    await current.dispose()
    expect(answer).toMatchObject({ finishReason: 'length', partial: true })
  }, 60_000)
})

describe('this SDK against this edge', () => {
  it('a handoff in a format the edge does not serve: one request, answered in its default, the reason the edge gives in the answer', async () => {
    const before = chatRequests(newEdge)
    const client = deviceClient(newEdge.url, { failAtToken: 4 })
    const result = await client.chat(request)
    await client.dispose()
    expect(result.route).toBe('device+edge')
    expect(result.usage).toMatchObject({ dtype: 'q8+q4', backend: 'wasm+native', completionTokens: 12 })
    expect(result.usage.routeReason).toMatch(
      /; handed off to the edge after 4 tokens: .*; Asked for q8 on wasm; answered in q4 on native: this server does not serve q8 on wasm \(it serves q4 on native\)$/,
    )
    await expect.poll(() => chatRequests(newEdge) - before).toBe(1)
  }, 60_000)
})

describe('an SDK from before ondevice_format against this edge', () => {
  it('its handoff (a continuation without the field) is answered in the edge default, as this SDK is answered without it', async () => {
    // The older SDK's own edge client, from its own sources.
    const older = (await import(
      /* @vite-ignore */ join(oldTree, 'sdk/edge-client.ts')
    )) as typeof import('../../sdk/edge-client.ts')
    const continuation: EdgeChatRequest = {
      messages: request.messages,
      sampling: { temperature: 1, seed: 11 },
      maxTokens: 6,
      continuation: { tokenIds: [9707, 11, 13], step: 3 },
    }
    const olderClient = new older.EdgeClient({ url: newEdge.url, apiKey })
    expect(await olderClient.body(continuation)).not.toHaveProperty('ondevice_format')
    const fromOlder = await collect(olderClient.stream(continuation))
    const fromThis = await collect(new EdgeClient({ url: newEdge.url, apiKey }).stream(continuation))
    expect(fromOlder.tokenIds).toHaveLength(6)
    expect(fromOlder).toEqual(fromThis)
  })
})
