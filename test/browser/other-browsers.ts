// Firefox and WebKit for the browser tests, driven through their own W3C remote protocols with no
// client library and no browser download: Debian's firefox-esr over WebDriver BiDi (a WebSocket
// the browser itself serves with --remote-debugging-port) and WebKitGTK's MiniBrowser through
// WebKitWebDriver (the W3C WebDriver HTTP protocol) on an Xvfb display, since WebKitGTK has no
// headless mode. Each launch gets a fresh profile, listens on 127.0.0.1 only, and is stopped by
// the process ids it started. scripts/setup-system.sh installs firefox-esr, webkit2gtk-driver and
// xvfb; when one is missing, launching throws saying so.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A page (one tab) of a launched browser. */
export interface DrivenPage {
  /** Loads `url` and waits for its load event. */
  goto(url: string): Promise<void>
  /**
   * Runs `fn` (a function's source: `async (arg) => ...`) in the page with `arg` (JSON) and
   * resolves with its JSON result; a throw or rejection in the page rejects with its message.
   */
  evaluate<Result>(fn: string, arg?: unknown): Promise<Result>
}

export interface DrivenBrowser {
  /** 'firefox', 'webkit' or 'chromium' (test-page.ts). */
  readonly name: string
  /** e.g. 'Firefox 153.8.0esr', 'WebKitGTK 2.50.6'. */
  readonly version: string
  /** The browser's one tab (a fresh profile per launch: its storage starts empty). */
  readonly page: DrivenPage
  /** What the browser and its driver printed (for failure messages). */
  output(): string
  close(): Promise<void>
}

const setupHint = 'Run scripts/setup-system.sh (as root, or with passwordless sudo), which installs it.'

function missing(what: string, paths: readonly string[], variable: string): Error {
  return new Error(
    `The ${what} browser tests need ${paths.join(' or ')}, which is absent. ${setupHint} ` +
      `Or set ${variable} to another binary.`,
  )
}

function findBinary(variable: string, candidates: readonly string[], what: string): string {
  const fromEnvironment = process.env[variable]
  if (fromEnvironment) {
    if (!existsSync(fromEnvironment))
      throw new Error(`${variable} points at ${fromEnvironment}, which does not exist.`)
    return fromEnvironment
  }
  const found = candidates.find((path) => existsSync(path))
  if (!found) throw missing(what, candidates, variable)
  return found
}

/** Wraps `fn` so that the page hands back its result as one JSON string (both protocols carry strings as they are). */
function wrapped(fn: string): string {
  return `async (argument) => JSON.stringify((await (${fn})(JSON.parse(argument))) ?? null)`
}

/** Stops a process and its children (started detached: a group of its own), by its id. */
async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    process.kill(-child.pid, 'SIGTERM')
  } catch {
    return
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {}
  }, 5_000)
  await exited
  clearTimeout(timer)
}

/**
 * Stops `child`'s process group if this process exits first (a test runner killed mid-run):
 * started detached, the browser would otherwise outlive it.
 */
function stopOnExit(child: ChildProcess): void {
  const onExit = () => {
    try {
      if (child.pid && child.exitCode === null) process.kill(-child.pid, 'SIGKILL')
    } catch {}
  }
  process.once('exit', onExit)
  child.once('exit', () => process.removeListener('exit', onExit))
}

function collect(child: ChildProcess, into: { text: string }): void {
  const add = (chunk: Buffer) => {
    into.text += chunk.toString()
    if (into.text.length > 200_000) into.text = into.text.slice(-100_000)
  }
  child.stdout?.on('data', add)
  child.stderr?.on('data', add)
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

function waitFor<T>(
  what: string,
  timeoutMs: number,
  poll: () => T | undefined,
  log: () => string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const tick = () => {
      const value = poll()
      if (value !== undefined) return resolve(value)
      if (Date.now() - started > timeoutMs)
        return reject(
          new Error(`${what} did not happen within ${timeoutMs} ms. Output:\n${log().slice(-4000)}`),
        )
      setTimeout(tick, 100)
    }
    tick()
  })
}

// ---------------------------------------------------------------------------------------------
// Firefox over WebDriver BiDi.

const firefoxCandidates = ['/usr/bin/firefox-esr', '/usr/bin/firefox']

/** Firefox's remote agent sets its recommended automation prefs itself; these keep it off the network too. */
const firefoxPrefs: Readonly<Record<string, string | number | boolean>> = {
  'app.update.enabled': false,
  'app.update.auto': false,
  'browser.shell.checkDefaultBrowser': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'browser.safebrowsing.downloads.enabled': false,
  'browser.newtabpage.enabled': false,
  'browser.startup.page': 0,
  'datareporting.policy.dataSubmissionEnabled': false,
  'datareporting.healthreport.uploadEnabled': false,
  'toolkit.telemetry.enabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'extensions.update.enabled': false,
  'extensions.getAddons.cache.enabled': false,
  'services.settings.server': 'http://127.0.0.1:9/',
}

interface BidiMessage {
  readonly id?: number
  readonly type?: string
  readonly result?: Record<string, unknown>
  readonly error?: string
  readonly message?: string
  readonly method?: string
  readonly params?: Record<string, unknown>
}

export async function launchFirefox(): Promise<DrivenBrowser> {
  const binary = findBinary('FIREFOX_PATH', firefoxCandidates, 'Firefox')
  const profile = await mkdtemp(join(tmpdir(), 'ondevice-firefox-'))
  await writeFile(
    join(profile, 'user.js'),
    Object.entries(firefoxPrefs)
      .map(([name, value]) => `user_pref(${JSON.stringify(name)}, ${JSON.stringify(value)});`)
      .join('\n'),
  )
  const log = { text: '' }
  const child = spawn(
    binary,
    ['--headless', '--no-remote', '--profile', profile, '--remote-debugging-port=0', 'about:blank'],
    {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MOZ_CRASHREPORTER_DISABLE: '1', MOZ_DISABLE_AUTO_SAFE_MODE: '1' },
    },
  )
  collect(child, log)
  stopOnExit(child)
  let socket: WebSocket | undefined
  const close = async () => {
    socket?.close()
    await stop(child)
    await rm(profile, { recursive: true, force: true }).catch(() => undefined)
  }
  try {
    const endpoint = await waitFor(
      'Firefox printing its WebDriver BiDi address',
      60_000,
      () => /WebDriver BiDi listening on (ws:\/\/[\w.:[\]]+)/.exec(log.text)?.[1],
      () => log.text,
    )
    const ws = new WebSocket(`${endpoint}/session`)
    socket = ws
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true })
      ws.addEventListener('error', () => reject(new Error(`could not connect to ${endpoint}/session`)), {
        once: true,
      })
    })
    let nextId = 1
    const pending = new Map<
      number,
      { resolve(value: Record<string, unknown>): void; reject(error: Error): void }
    >()
    ws.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as BidiMessage
      if (message.id === undefined) return
      const waiting = pending.get(message.id)
      pending.delete(message.id)
      if (message.type === 'error') waiting?.reject(new Error(`${message.error}: ${message.message}`))
      else waiting?.resolve(message.result ?? {})
    })
    ws.addEventListener('close', () => {
      for (const waiting of pending.values())
        waiting.reject(new Error('Firefox closed its WebDriver BiDi connection'))
      pending.clear()
    })
    const send = (method: string, params: Record<string, unknown>) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const id = nextId++
        pending.set(id, { resolve, reject })
        ws.send(JSON.stringify({ id, method, params }))
      })
    const session = await send('session.new', { capabilities: {} })
    const capabilities = session['capabilities'] as { browserVersion?: string }
    const tree = await send('browsingContext.getTree', {})
    const context = (tree['contexts'] as { context: string }[])[0]?.context
    if (!context) throw new Error('Firefox reported no browsing context')
    const page: DrivenPage = {
      goto: async (url) => {
        await send('browsingContext.navigate', { context, url, wait: 'complete' })
      },
      evaluate: async <Result>(fn: string, arg?: unknown) => {
        const result = (await send('script.callFunction', {
          functionDeclaration: wrapped(fn),
          arguments: [{ type: 'string', value: JSON.stringify(arg ?? null) }],
          awaitPromise: true,
          target: { context },
        })) as { type: string; result?: { value?: string }; exceptionDetails?: { text?: string } }
        if (result.type === 'exception')
          throw new Error(`in Firefox's page: ${result.exceptionDetails?.text ?? 'an exception'}`)
        return JSON.parse(result.result?.value ?? 'null') as Result
      },
    }
    return {
      name: 'firefox',
      version: `Firefox ${capabilities.browserVersion ?? '?'}`,
      page,
      output: () => log.text,
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}

// ---------------------------------------------------------------------------------------------
// WebKitGTK's MiniBrowser over W3C WebDriver (WebKitWebDriver), on Xvfb.

const webkitDriverCandidates = ['/usr/bin/WebKitWebDriver']
const xvfbCandidates = ['/usr/bin/Xvfb']
const miniBrowserCandidates = [
  '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser',
  '/usr/lib/aarch64-linux-gnu/webkit2gtk-4.1/MiniBrowser',
  '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.0/MiniBrowser',
  '/usr/lib/aarch64-linux-gnu/webkit2gtk-4.0/MiniBrowser',
]

/** A display number nobody holds (no X lock file). */
function freeDisplay(): number {
  for (let display = 90 + (process.pid % 100); display < 400; display++)
    if (!existsSync(`/tmp/.X${display}-lock`) && !existsSync(`/tmp/.X11-unix/X${display}`)) return display
  throw new Error('no free X display number between 90 and 400')
}

export interface WebKitOptions {
  /**
   * WebKit features to switch on or off (MiniBrowser's --features, e.g. '+FileSystem'). WebKitGTK
   * 2.50 leaves the Storage API and OPFS off by default; Safari has them on.
   */
  readonly features?: readonly string[]
}

export async function launchWebKit(options: WebKitOptions = {}): Promise<DrivenBrowser> {
  const driver = findBinary('WEBKIT_WEBDRIVER_PATH', webkitDriverCandidates, 'WebKit (WebKitWebDriver)')
  const xvfb = findBinary('XVFB_PATH', xvfbCandidates, 'WebKit (Xvfb, its display)')
  const miniBrowser = findBinary(
    'WEBKIT_BROWSER_PATH',
    miniBrowserCandidates,
    'WebKit (WebKitGTK MiniBrowser)',
  )
  const log = { text: '' }
  const display = freeDisplay()
  const xserver = spawn(xvfb, [`:${display}`, '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  collect(xserver, log)
  stopOnExit(xserver)
  let driverProcess: ChildProcess | undefined
  let base = ''
  let sessionId: string | undefined
  const close = async () => {
    if (sessionId) await fetch(`${base}/session/${sessionId}`, { method: 'DELETE' }).catch(() => undefined)
    await stop(driverProcess)
    await stop(xserver)
  }
  try {
    await waitFor(
      `Xvfb on display :${display}`,
      20_000,
      () => (existsSync(`/tmp/.X11-unix/X${display}`) ? true : xserver.exitCode !== null ? false : undefined),
      () => log.text,
    ).then((up) => {
      if (!up) throw new Error(`Xvfb exited: ${log.text.slice(-2000)}`)
    })
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    driverProcess = spawn(driver, [`--port=${port}`, '--host=127.0.0.1'], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DISPLAY: `:${display}`, GDK_BACKEND: 'x11', LIBGL_ALWAYS_SOFTWARE: '1' },
    })
    collect(driverProcess, log)
    stopOnExit(driverProcess)
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      const json = (await response.json()) as { value: unknown }
      const value = json.value as { error?: string; message?: string } | null
      if (!response.ok || (value && typeof value === 'object' && 'error' in value && value.error))
        throw new Error(`WebKitWebDriver ${method} ${path}: ${value?.error}: ${value?.message}`)
      return json.value
    }
    await waitFor(
      'WebKitWebDriver answering',
      20_000,
      () => (log.text.length >= 0 && driverProcess?.exitCode === null ? true : undefined),
      () => log.text,
    )
    let created: { sessionId: string; capabilities: { browserVersion?: string } } | undefined
    for (let attempt = 0; attempt < 50 && !created; attempt++) {
      try {
        created = (await call('POST', '/session', {
          capabilities: {
            alwaysMatch: {
              'webkitgtk:browserOptions': {
                binary: miniBrowser,
                args: [
                  '--automation',
                  ...(options.features?.length ? [`--features=${options.features.join(',')}`] : []),
                ],
              },
            },
          },
        })) as typeof created
      } catch (error) {
        if (!String(error).includes('fetch failed') && !String(error).includes('ECONNREFUSED')) throw error
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
    if (!created)
      throw new Error(`WebKitWebDriver did not start a session. Output:\n${log.text.slice(-4000)}`)
    sessionId = created.sessionId
    const session = `/session/${sessionId}`
    // The engine's runs take longer than WebDriver's 30 s default script timeout on a busy machine.
    await call('POST', `${session}/timeouts`, { script: 600_000, pageLoad: 120_000 })
    const page: DrivenPage = {
      goto: async (url) => {
        await call('POST', `${session}/url`, { url })
      },
      evaluate: async <Result>(fn: string, arg?: unknown) => {
        const script = `const done = arguments[arguments.length - 1];
          (${wrapped(fn)})(arguments[0]).then(
            (value) => done({ value }),
            (error) => done({ error: error && error.stack ? String(error) + '\\n' + error.stack : String(error) }),
          );`
        const outcome = (await call('POST', `${session}/execute/async`, {
          script,
          args: [JSON.stringify(arg ?? null)],
        })) as { value?: string; error?: string }
        if (outcome.error !== undefined) throw new Error(`in WebKit's page: ${outcome.error}`)
        return JSON.parse(outcome.value ?? 'null') as Result
      },
    }
    return {
      name: 'webkit',
      version: `WebKitGTK ${created.capabilities.browserVersion ?? '?'}`,
      page,
      output: () => log.text,
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}
