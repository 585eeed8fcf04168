// The demo page: a chat over the public SDK API. The SDK runs the model in a dedicated Web
// Worker (its browser device host), so the page stays responsive while tokens stream in; the page
// renders the stream parts and shows where every answer ran and why.
import './styles.css'
import {
  type ChatMessage,
  type ClientStatus,
  createBrowserDeviceHost,
  createClient,
  type DownloadProgress,
  type OndeviceClient,
  type StreamPart,
} from 'ondevice'
import { AnswerView, appendUserMessage } from './chat-view.ts'
import { withDeviceControls } from './device-controls.ts'
import { formatBytes } from './format.ts'
import { type DemoSettings, demoSchema, loadSettings } from './settings.ts'

const byId = <T extends HTMLElement>(id: string): T => {
  const node = document.getElementById(id)
  if (node === null) throw new Error(`The page is missing #${id}.`)
  return node as T
}

const view = {
  modelUrl: byId<HTMLInputElement>('model-url'),
  policy: byId<HTMLSelectElement>('policy'),
  edgeUrl: byId<HTMLInputElement>('edge-url'),
  maxTokens: byId<HTMLInputElement>('max-tokens'),
  temperature: byId<HTMLInputElement>('temperature'),
  seed: byId<HTMLInputElement>('seed'),
  answerMode: byId<HTMLSelectElement>('answer-mode'),
  settingsForm: byId<HTMLFormElement>('settings-form'),
  prepare: byId<HTMLButtonElement>('prepare'),
  nextRoute: byId('next-route'),
  nextRouteLabel: byId('next-route-label'),
  nextRouteReason: byId('next-route-reason'),
  download: byId('download'),
  downloadText: byId('download-text'),
  downloadFigures: byId('download-figures'),
  downloadBar: byId('download-bar'),
  downloadFill: byId('download-fill'),
  chat: byId('chat'),
  empty: byId('empty'),
  composer: byId<HTMLFormElement>('composer'),
  prompt: byId<HTMLTextAreaElement>('prompt'),
  send: byId<HTMLButtonElement>('send'),
  stop: byId<HTMLButtonElement>('stop'),
  handoff: byId<HTMLButtonElement>('handoff'),
  error: byId('error'),
}

let settings: DemoSettings
let client: OndeviceClient | undefined
let history: ChatMessage[] = []
/** The answer being streamed: its view, the route facts gathered so far, and its controls. */
let running:
  | {
      view: AnswerView
      route: string
      reason: string
      handoff: string | undefined
      /** "Hand off" was pressed: the device fails at its next piece of text. */
      handedOff: boolean
      abort: AbortController
    }
  | undefined

const message = (error: unknown) => (error instanceof Error ? error.message : String(error))

function showError(message: string | undefined): void {
  view.error.hidden = message === undefined
  view.error.textContent = message ?? ''
}

function fillForm(): void {
  view.modelUrl.value = settings.model
  view.policy.value = settings.policy
  view.edgeUrl.value = settings.edge
  view.maxTokens.value = String(settings.maxTokens)
  view.temperature.value = String(settings.temperature)
  view.seed.value = String(settings.seed)
  view.answerMode.value = settings.answer
}

function readForm(): void {
  settings.model = view.modelUrl.value.trim()
  settings.policy = view.policy.value as DemoSettings['policy']
  settings.edge = view.edgeUrl.value.trim()
  settings.maxTokens = Number(view.maxTokens.value)
  settings.temperature = Number(view.temperature.value)
  settings.seed = Number(view.seed.value)
  settings.answer = view.answerMode.value === 'json' ? 'json' : 'text'
}

function showProgress(progress: DownloadProgress): void {
  const { loadedBytes } = progress
  const totalBytes = progress.totalBytes ?? 0
  const fraction = totalBytes > 0 ? Math.min(1, loadedBytes / totalBytes) : 0
  view.download.hidden = totalBytes > 0 && fraction >= 1
  view.download.dataset['loaded'] = String(loadedBytes)
  view.download.dataset['total'] = String(totalBytes)
  view.downloadText.textContent = `Downloading ${progress.file}…`
  view.downloadFigures.textContent = `${formatBytes(loadedBytes)} / ${formatBytes(totalBytes)}`
  view.downloadFill.style.width = `${(fraction * 100).toFixed(1)}%`
  view.downloadBar.setAttribute('aria-valuenow', (fraction * 100).toFixed(0))
}

function showStatus(status: ClientStatus): void {
  view.nextRoute.dataset['route'] = status.route
  const where = status.route === 'none' ? 'cannot answer' : `next: ${status.route}`
  view.nextRouteLabel.textContent = status.downloading ? `${where} · downloading` : where
  view.nextRouteReason.textContent = status.reason
}

async function refreshStatus(): Promise<void> {
  if (client === undefined) return
  try {
    showStatus(await client.status())
  } catch (error) {
    view.nextRoute.dataset['route'] = 'none'
    view.nextRouteLabel.textContent = 'cannot answer'
    view.nextRouteReason.textContent = message(error)
  }
}

async function configure(): Promise<void> {
  showError(undefined)
  view.nextRoute.dataset['route'] = 'unknown'
  view.nextRouteLabel.textContent = 'checking…'
  running?.abort.abort()
  const previous = client
  client = undefined
  await previous?.dispose()
  const deviceHost = withDeviceControls(await createBrowserDeviceHost(), {
    failAtToken: settings.failAtToken,
    tokenDelayMs: settings.tokenDelayMs,
    disableWebgpu: settings.disableWebgpu,
    handoffRequested: () => running?.handedOff === true,
  })
  const created = createClient(
    {
      model: new URL(settings.model, location.href).href,
      policy: settings.policy,
      ...(settings.dtype === '' ? {} : { dtype: settings.dtype }),
      ...(settings.backend === '' ? {} : { backend: settings.backend }),
      ...(settings.edge === ''
        ? {}
        : {
            edge: {
              url: settings.edge,
              ...(settings.edgeTimeoutMs === undefined ? {} : { connectTimeoutMs: settings.edgeTimeoutMs }),
            },
          }),
      ...(settings.minTokensPerSecond === undefined
        ? {}
        : { thresholds: { minDeviceTokensPerSecond: settings.minTokensPerSecond } }),
    },
    { deviceHost },
  )
  // Downloads start with "Download now", a background download, or the first device answer:
  // the bar follows all of them.
  created.on('progress', showProgress)
  created.on('ready', () => {
    view.download.hidden = true
    // A running answer refreshes the status when it ends.
    if (running === undefined) void refreshStatus()
  })
  created.on('download-error', ({ error }) => showError(`Background download failed: ${error.message}`))
  created.on('load-error', ({ error }) => showError(`The device could not load the model: ${error.message}`))
  client = created
  await refreshStatus()
}

function setRunning(on: boolean): void {
  view.send.disabled = on
  view.stop.hidden = !on
  view.handoff.disabled = true
}

async function ask(prompt: string): Promise<void> {
  if (running !== undefined || client === undefined) return
  view.empty.hidden = true
  appendUserMessage(view.chat, prompt)
  history = [...history, { role: 'user', content: prompt }]
  const answer = {
    view: new AnswerView(view.chat),
    route: 'device',
    reason: '',
    handoff: undefined,
    handedOff: false,
    abort: new AbortController(),
  }
  running = answer
  answer.view.element.scrollIntoView({ block: 'end' })
  setRunning(true)
  try {
    const parts = client.stream({
      messages: history,
      maxTokens: settings.maxTokens,
      temperature: settings.temperature,
      seed: settings.seed,
      signal: answer.abort.signal,
      ...(settings.answer === 'json'
        ? { responseFormat: { type: 'json_schema' as const, schema: demoSchema } }
        : {}),
    })
    for await (const part of parts) onPart(part)
  } catch (error) {
    answer.view.fail(message(error))
  } finally {
    running = undefined
    setRunning(false)
    view.download.hidden = true
    void refreshStatus()
  }
}

function onPart(part: StreamPart): void {
  const answer = running
  if (answer === undefined) return
  switch (part.type) {
    case 'route':
      answer.route = part.route
      answer.reason = part.reason
      answer.view.showRoute(part.route, undefined, part.reason)
      // Only an answer running on the device can be handed off.
      view.handoff.disabled = part.route !== 'device' || answer.handedOff
      break
    case 'text-delta':
      answer.view.append(part.text)
      answer.view.element.scrollIntoView({ block: 'end' })
      break
    case 'reasoning-delta':
      answer.view.appendReasoning(part.text)
      answer.view.element.scrollIntoView({ block: 'end' })
      break
    case 'handoff':
      answer.handoff = `Handed off after ${part.completedTokens} tokens: ${part.reason}`
      answer.view.showHandoff(part.reason, part.completedTokens)
      view.handoff.disabled = true
      break
    case 'finish':
      answer.view.finish(
        {
          route: part.usage.route ?? answer.route,
          backend: part.usage.backend,
          reason: part.usage.routeReason ?? answer.reason,
          timeToFirstTokenMs: part.usage.timeToFirstTokenMs,
          decodeTokensPerSecond: part.usage.decodeTokensPerSecond,
          completionTokens: part.usage.completionTokens,
          handoff: answer.handoff,
        },
        part.tokenIds,
        part.finishReason,
      )
      if (settings.answer === 'json' && part.finishReason === 'stop') answer.view.showJson(part.text)
      history = [
        ...history,
        {
          role: 'assistant',
          content: part.text,
          ...(part.reasoning === undefined ? {} : { reasoningContent: part.reasoning }),
        },
      ]
      break
    case 'error':
      answer.view.fail(part.error.message)
      break
  }
}

view.composer.addEventListener('submit', (event) => {
  event.preventDefault()
  const prompt = view.prompt.value.trim()
  if (prompt === '') return
  view.prompt.value = ''
  void ask(prompt)
})

view.prompt.addEventListener('keydown', (event) => {
  // Enter sends, Shift+Enter makes a new line (as in every chat app).
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault()
    view.composer.requestSubmit()
  }
})

view.stop.addEventListener('click', () => running?.abort.abort())

view.handoff.addEventListener('click', () => {
  if (running === undefined) return
  running.handedOff = true
  view.handoff.disabled = true
})

view.settingsForm.addEventListener('submit', (event) => {
  event.preventDefault()
  readForm()
  history = []
  configure().catch((error: unknown) => showError(message(error)))
})

view.prepare.addEventListener('click', () => {
  if (client === undefined) return
  view.prepare.disabled = true
  client
    .prepare()
    .then(showStatus, (error: unknown) => showError(message(error)))
    .finally(() => {
      view.prepare.disabled = false
      view.download.hidden = true
    })
})

async function start(): Promise<void> {
  // On a phone the chat matters more than the settings: start with them folded.
  if (window.matchMedia('(max-width: 520px)').matches) byId<HTMLDetailsElement>('settings').open = false
  settings = await loadSettings(location)
  fillForm()
  await configure()
  document.body.dataset['ready'] = 'true'
}

start().catch((error: unknown) => showError(message(error)))
