// What the page runs with: defaults from `demo-config.json` (written next to the built page by
// `npm start` or a test, so the page knows the local edge worker's URL), then the URL's query
// string on top, so a link (or a test) can set any of them: ?model=…&policy=edge-only&edge=…
export type DemoPolicy = 'prefer-device' | 'device-only' | 'edge-only' | 'prefer-edge'

export interface DemoSettings {
  /** Model package URL prefix (a folder URL ending in '/'). */
  model: string
  policy: DemoPolicy
  /** Edge worker base URL, or '' for none. */
  edge: string
  /** How long to wait for the edge's first response bytes (the SDK's default when absent). */
  edgeTimeoutMs: number | undefined
  maxTokens: number
  temperature: number
  seed: number
  /** Weight format to load ('' = the runtime's choice for the backend), e.g. 'q4' to match the edge. */
  dtype: string
  /** Device backend to force ('' = the router's choice): webgpu, wasm or ort-wasm. */
  backend: '' | 'webgpu' | 'wasm' | 'ort-wasm'
  /** Route thresholds (a test lowers or raises these to force a decision). */
  minTokensPerSecond: number | undefined
  /** Test hook: the device session fails at this token, so the edge takes over. */
  failAtToken: number | undefined
  /** Test hook: the device waits this long after each piece of text, like a slower phone. */
  tokenDelayMs: number | undefined
  /** Hides WebGPU from the SDK's capability probe (a test hook, like a browser without it). */
  disableWebgpu: boolean
  /** 'json': answers follow demoSchema (structured output, enforced token by token). */
  answer: 'text' | 'json'
}

/** The schema of the JSON mode: a small record card, bounded so even a random-weight model finishes. */
export const demoSchema = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 24 },
    city: { type: 'string', maxLength: 24 },
    age: { type: 'integer', minimum: 0, maximum: 120 },
    email: { type: 'string', format: 'email', maxLength: 40 },
    hobbies: { type: 'array', items: { type: 'string', maxLength: 16 }, maxItems: 3 },
  },
  required: ['name', 'city', 'age', 'email', 'hobbies'],
  additionalProperties: false,
} as const

const policies: readonly DemoPolicy[] = ['prefer-device', 'device-only', 'edge-only', 'prefer-edge']

const builtIn: DemoSettings = {
  model: '/models/default/',
  policy: 'prefer-device',
  edge: '',
  edgeTimeoutMs: undefined,
  maxTokens: 48,
  temperature: 0,
  seed: 1,
  dtype: '',
  backend: '',
  minTokensPerSecond: undefined,
  failAtToken: undefined,
  tokenDelayMs: undefined,
  disableWebgpu: false,
  answer: 'text',
}

export async function loadSettings(location: Location): Promise<DemoSettings> {
  const settings: DemoSettings = { ...builtIn }
  try {
    const response = await fetch(new URL('demo-config.json', location.href), { cache: 'no-store' })
    if (response.ok) apply(settings, (await response.json()) as Record<string, unknown>)
  } catch {
    // Offline or absent: the built-in defaults and the query string still work.
  }
  const query: Record<string, unknown> = {}
  for (const [key, value] of new URLSearchParams(location.search)) query[key] = value
  apply(settings, query)
  return settings
}

function apply(settings: DemoSettings, values: Record<string, unknown>): void {
  const text = (key: string): string | undefined => {
    const value = values[key]
    return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined
  }
  const number = (key: string): number | undefined => {
    const value = text(key)
    if (value === undefined || value.trim() === '') return undefined
    const parsed = Number(value)
    return Number.isFinite(parsed) ? parsed : undefined
  }
  const model = text('model')
  if (model !== undefined && model !== '') settings.model = model
  const policy = text('policy')
  if (policy !== undefined && (policies as readonly string[]).includes(policy)) {
    settings.policy = policy as DemoPolicy
  }
  const dtype = text('dtype')
  if (dtype !== undefined) settings.dtype = dtype
  const backend = text('backend')
  if (backend === '' || backend === 'webgpu' || backend === 'wasm' || backend === 'ort-wasm')
    settings.backend = backend
  const edge = text('edge')
  if (edge !== undefined) settings.edge = edge
  settings.maxTokens = number('maxTokens') ?? settings.maxTokens
  settings.temperature = number('temperature') ?? settings.temperature
  settings.seed = number('seed') ?? settings.seed
  settings.edgeTimeoutMs = number('edgeTimeoutMs') ?? settings.edgeTimeoutMs
  settings.minTokensPerSecond = number('minTokensPerSecond') ?? settings.minTokensPerSecond
  settings.failAtToken = number('failAtToken') ?? settings.failAtToken
  settings.tokenDelayMs = number('tokenDelayMs') ?? settings.tokenDelayMs
  const answer = text('answer')
  if (answer === 'text' || answer === 'json') settings.answer = answer
  const disableWebgpu = values['disableWebgpu']
  if (disableWebgpu === true || disableWebgpu === 'true' || disableWebgpu === '1')
    settings.disableWebgpu = true
}
