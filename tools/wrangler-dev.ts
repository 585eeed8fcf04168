// The one way this repository starts `wrangler dev` (workerd) and other local servers: on
// 127.0.0.1, offline, in their own process group (stopping one also stops the workerd it
// started), ready once /healthz answers. Used by the demo (`npm start`), the workerd and browser
// tests and the edge-load benchmark; `ondevice edge` (cli/commands/edge.ts) runs it from the
// published package too (edgeWorkerConfigPath), with the app's own wrangler.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repositoryRoot: string = fileURLToPath(new URL('../', import.meta.url))

/** Keeps wrangler off the network and quiet: no metrics, error reports, Cloudflare fetches or update checks. */
export const offlineWranglerEnv: Readonly<Record<string, string>> = {
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  NO_UPDATE_NOTIFIER: '1',
}

/**
 * Run from the repository's TypeScript sources, wrangler's bundler must resolve package.json's
 * 'ondevice-source' condition as Node does here ('#node-device-host' and the like), or it picks
 * dist/, which exists only after a build (and then is whatever was built last). From the
 * published package (this file compiled to .js) dist/ is the code: wrangler's own conditions.
 */
const sourceBuildEnv: Readonly<Record<string, string>> =
  import.meta.url.endsWith('.ts') && process.env['WRANGLER_BUILD_CONDITIONS'] === undefined
    ? { WRANGLER_BUILD_CONDITIONS: 'ondevice-source,workerd,worker,browser' }
    : {}

/** Not a terminal: no interactive prompts, no colour codes in the output tests read. */
const nonInteractiveEnv: Readonly<Record<string, string>> = { CI: 'true', NO_COLOR: '1' }

/** The wrangler the edge worker is checked with (docs/reliability.md, "Lost requests under wrangler dev"). */
export const minimumWranglerVersion = '4.164.0'

export interface InstalledWrangler {
  /** wrangler's CLI script, from its package.json's `bin` (wrangler 4.1xx exports only `.` and
   * `./package.json`, so `wrangler/bin/wrangler.js` cannot be resolved directly). */
  readonly cli: string
  readonly version: string
}

/**
 * The wrangler to run: the one the working directory's project installed (`npm install
 * --save-dev wrangler` in the app, the folder `ondevice edge` runs in), else the one resolved
 * from here (the repository's devDependency, or one beside an installed ondevice). From here
 * alone, an ondevice installed elsewhere (npm install -g, another project's) said wrangler was
 * not installed in a project that had it.
 */
export function findWrangler(from: string = process.cwd()): InstalledWrangler {
  let packageJsonPath: string | undefined
  for (const base of [join(from, 'package.json'), fileURLToPath(import.meta.url)]) {
    try {
      packageJsonPath = createRequire(base).resolve('wrangler/package.json')
      break
    } catch {
      // Not installed there.
    }
  }
  if (packageJsonPath === undefined) {
    throw new Error(
      `This runs the edge worker with wrangler, which is not installed here: \`npm install --save-dev wrangler\` (${minimumWranglerVersion.replace(/\.0$/, '')} or later).`,
    )
  }
  const manifest = createRequire(packageJsonPath)(packageJsonPath) as {
    bin: { wrangler: string }
    version: string
  }
  return { cli: join(dirname(packageJsonPath), manifest.bin.wrangler), version: manifest.version }
}

export function wranglerCliPath(): string {
  return findWrangler().cli
}

/** Whether version a (x.y.z) is older than b. */
function olderThan(a: string, b: string): boolean {
  const parts = (version: string) => version.split(/[.-]/).slice(0, 3).map(Number)
  const [x, y] = [parts(a), parts(b)]
  for (let index = 0; index < 3; index++) {
    if ((x[index] ?? 0) !== (y[index] ?? 0)) return (x[index] ?? 0) < (y[index] ?? 0)
  }
  return false
}

/**
 * A warning for a wrangler older than the one the edge is checked with, or undefined. npm installs
 * the newest wrangler the running Node supports: on Node below 22.12 (which ondevice itself
 * supports) `npm install --save-dev wrangler` gives 4.86.0, whose `wrangler dev` loses a few
 * requests after error answers (docs/reliability.md), and nothing said so.
 */
export function wranglerVersionWarning(version: string, node: string = process.version): string | undefined {
  if (!olderThan(version, minimumWranglerVersion)) return undefined
  const minimum = minimumWranglerVersion.replace(/\.0$/, '')
  return (
    `Warning: wrangler ${version} is installed here; the edge worker is checked with wrangler ${minimum} or later ` +
    `(under wrangler ${version}'s \`wrangler dev\` a few requests after an error answer are lost: docs/reliability.md). ` +
    `npm installs the newest wrangler the running Node supports, and wrangler ${minimum} needs Node >= 22.12 ` +
    `(this is ${node}): on Node >= 22.12, \`npm install --save-dev wrangler@latest\`.`
  )
}

/**
 * The edge worker's wrangler config: the repository's wrangler.toml in a checkout. The published
 * package ships dist/ without the sources or wrangler.toml, so there one is written into a fresh
 * temporary folder with the built worker as `main` (the same settings a user's project needs:
 * docs/worker.md, "Your own Worker project"). The caller removes that folder (the path's
 * dirname) when the worker stops: wrangler keeps its .wrangler/ build output there too.
 */
export function edgeWorkerConfigPath(): string | undefined {
  if (existsSync(join(repositoryRoot, 'wrangler.toml'))) return undefined
  const main = fileURLToPath(new URL('../worker/index.js', import.meta.url))
  const folder = mkdtempSync(join(tmpdir(), 'ondevice-edge-config-'))
  const path = join(folder, 'wrangler.toml')
  writeFileSync(path, edgeWorkerConfigToml(main))
  return path
}

/**
 * The wrangler.toml of a Worker that is ondevice's edge app at `main`: what docs/worker.md's
 * "Your own Worker project" shows a user (test/package-docs.test.ts holds the two together).
 */
export function edgeWorkerConfigToml(main: string): string {
  return [
    'name = "ondevice-edge"',
    `main = ${JSON.stringify(main)}`,
    'compatibility_date = "2025-09-01"',
    'compatibility_flags = ["enable_request_signal"]',
    'send_metrics = false',
    '[[rules]]',
    'type = "CompiledWasm"',
    'globs = ["**/*.wasm"]',
    'fallthrough = true',
    '',
  ].join('\n')
}

/** A port nothing listens on right now, on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, rejectPort) => {
    const server = createServer()
    server.once('error', rejectPort)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolvePort(port))
    })
  })
}

/**
 * Why `port` cannot be listened on at 127.0.0.1 (Node's message, e.g. "listen EADDRINUSE: ..."),
 * or undefined when it is free. wrangler dev on a port something else holds exits with "Address
 * already in use", but only after the readiness check may have been answered by that other
 * server (another edge, `ondevice serve`): the caller would report its answer as this worker's.
 */
export async function portUnavailable(port: number): Promise<string | undefined> {
  return new Promise((resolveCheck) => {
    const server = createServer()
    server.once('error', (error) => resolveCheck(error.message))
    server.listen(port, '127.0.0.1', () => server.close(() => resolveCheck(undefined)))
  })
}

export interface LocalServer {
  /** Base URL, e.g. http://127.0.0.1:8787 */
  readonly url: string
  readonly pid: number
  /** The server's output so far (all of it, or the last `keepOutputChars`), for assertions and failure messages. */
  output(): string
  /** Stops the process group (SIGTERM, SIGKILL after 5 s) and waits for the server to exit. */
  stop(): Promise<void>
}

export interface ServerProcessOptions {
  /** Arguments to `node` (the script first). */
  readonly args: readonly string[]
  /** Where it will listen; ready once `${url}/healthz` answers 2xx. */
  readonly url: string
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>
  /** How long to wait for /healthz. Default 60 s. */
  readonly timeoutMs?: number
  /** Receives each non-empty output line as it comes. */
  readonly onOutput?: (line: string) => void
  /** Keep only this many characters of output (a long-running server); default: all of it. */
  readonly keepOutputChars?: number
  /**
   * Scratch folders the server uses (its config, its local state): removed once it has exited,
   * whichever way it goes (stop(), a failed start, the server exiting by itself, or this process
   * exiting first, on Ctrl-C mid-start included).
   */
  readonly temporaryPaths?: readonly string[]
}

/** Removes scratch folders; never throws (a folder already gone, or one still being written). */
function removePaths(paths: readonly string[]): void {
  for (const path of paths) {
    try {
      rmSync(path, { recursive: true, force: true, maxRetries: 2 })
    } catch {
      // Nothing more to do from a cleanup path.
    }
  }
}

/** Spawns `node ...args` in its own process group and waits until its /healthz answers. */
export async function startServerProcess(options: ServerProcessOptions): Promise<LocalServer> {
  const child: ChildProcess = spawn(process.execPath, [...options.args], {
    cwd: repositoryRoot,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so stopping it also stops what it starts (wrangler's workerd).
    detached: true,
  })
  let output = ''
  let partial = ''
  const collect = (chunk: Buffer): void => {
    const text = chunk.toString('utf8')
    output += text
    if (options.keepOutputChars !== undefined && output.length > options.keepOutputChars) {
      output = output.slice(-options.keepOutputChars)
    }
    if (options.onOutput) {
      const lines = (partial + text).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) if (line.trim() !== '') options.onOutput(line)
    }
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  const temporaryPaths = options.temporaryPaths ?? []
  const pid = child.pid
  // The server runs in its own process group, so a Ctrl-C in the terminal never reaches it: when
  // this process exits first (the signal handler of `ondevice edge` or `npm start` calling
  // process.exit, even mid-start), the group is stopped and the scratch folders removed here.
  const onParentExit = (): void => {
    if (pid !== undefined) {
      try {
        process.kill(-pid, 'SIGTERM')
      } catch {
        // Already gone.
      }
    }
    removePaths(temporaryPaths)
  }
  process.once('exit', onParentExit)
  let exited = false
  const exit = new Promise<void>((resolveExit) =>
    child.once('exit', () => {
      exited = true
      process.off('exit', onParentExit)
      removePaths(temporaryPaths)
      resolveExit()
    }),
  )
  if (pid === undefined) {
    process.off('exit', onParentExit)
    removePaths(temporaryPaths)
    throw new Error(`Could not start node ${options.args.join(' ')} (no process id).`)
  }

  const stop = async (): Promise<void> => {
    if (exited) return
    try {
      process.kill(-pid, 'SIGTERM')
    } catch {
      return
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }, 5000)
    await exit
    clearTimeout(timer)
  }

  const timeoutMs = options.timeoutMs ?? 60_000
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (exited) {
      await exit
      throw new Error(
        `${describe(options.args)} exited (${child.exitCode ?? child.signalCode}) before it served ${options.url}:\n${output}`,
      )
    }
    try {
      const response = await fetch(`${options.url}/healthz`, { signal: AbortSignal.timeout(2000) })
      await response.body?.cancel()
      if (response.ok) break
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(
        `${describe(options.args)} did not answer ${options.url}/healthz within ${timeoutMs} ms:\n${output}`,
      )
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 250))
  }
  return { url: options.url, pid, output: () => output, stop }
}

function describe(args: readonly string[]): string {
  return args[0]?.includes('wrangler') ? `wrangler ${args[1] ?? ''}`.trim() : `node ${args[0] ?? ''}`.trim()
}

export interface WranglerDevOptions {
  /** The wrangler config (-c); default: the repository's wrangler.toml. */
  readonly configPath?: string
  /** 0 or absent: a free port. */
  readonly port?: number
  /**
   * Where wrangler keeps local state (R2, caches, rate-limit counters): --persist-to. Default: a
   * fresh temporary folder, removed at stop. Never wrangler's shared .wrangler/state: two
   * `wrangler dev` side by side on one SQLite file fail each other's requests (SQLITE_BUSY).
   */
  readonly stateDir?: string
  /**
   * A file of NAME=VALUE secrets (--env-file, read instead of .dev.vars): unlike --var, never in
   * the process list nor printed with the bindings.
   */
  readonly envFile?: string
  /** Worker variables on top of the config's (--var NAME:VALUE). */
  readonly vars?: Readonly<Record<string, string>>
  /** The config's `main` is a finished bundle (wrangler deploy --dry-run): serve it as is (--no-bundle). */
  readonly noBundle?: boolean
  /**
   * Let `wrangler dev` build and run the config's [[containers]] (needs Docker with buildx and
   * the registry of wrangler's sidecar image). Default false: the Worker runs, its Container
   * Durable Object does not; a local edge binds containers by CONTAINER_URLS instead.
   */
  readonly enableContainers?: boolean
  /** wrangler's --log-level; default: wrangler's own (which prints the worker's console lines). */
  readonly logLevel?: 'debug' | 'info' | 'log' | 'warn' | 'error' | 'none'
  /** How long to wait for /healthz. Default 60 s (each worker pays for compiling ORT's wasm). */
  readonly timeoutMs?: number
  readonly onOutput?: (line: string) => void
  readonly keepOutputChars?: number
}

/** Starts `wrangler dev` offline on 127.0.0.1 and waits until the worker's /healthz answers. */
export async function startWranglerDev(options: WranglerDevOptions = {}): Promise<LocalServer> {
  // Before any temporary folder exists: this throws when wrangler is not installed.
  const wranglerCli = wranglerCliPath()
  const port = options.port !== undefined && options.port !== 0 ? options.port : await freePort()
  // An explicit inspector port too: the default (9229, then 9230) collides when several run side by side.
  const inspectorPort = await freePort()
  // From the published package: a temporary wrangler.toml, removed with the state when it stops.
  const ownConfigPath = options.configPath === undefined ? edgeWorkerConfigPath() : undefined
  const configPath = options.configPath ?? ownConfigPath
  const ownStateDir =
    options.stateDir === undefined ? mkdtempSync(join(tmpdir(), 'ondevice-wrangler-state-')) : undefined
  const stateDir = options.stateDir ?? ownStateDir
  const temporaryPaths = [
    ...(ownConfigPath === undefined ? [] : [dirname(ownConfigPath)]),
    ...(ownStateDir === undefined ? [] : [ownStateDir]),
  ]
  const args = [
    wranglerCli,
    'dev',
    ...(configPath === undefined ? [] : ['-c', configPath]),
    ...(options.noBundle ? ['--no-bundle'] : []),
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--inspector-port',
    String(inspectorPort),
    '--local',
    '--show-interactive-dev-session=false',
    `--enable-containers=${options.enableContainers === true}`,
    ...(stateDir === undefined ? [] : ['--persist-to', stateDir]),
    ...(options.logLevel === undefined ? [] : ['--log-level', options.logLevel]),
    ...(options.envFile === undefined ? [] : ['--env-file', options.envFile]),
    ...Object.entries(options.vars ?? {}).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
  ]
  // startServerProcess removes the temporary folders once wrangler has exited, whichever way.
  return startServerProcess({
    args,
    url: `http://127.0.0.1:${port}`,
    env: { ...offlineWranglerEnv, ...sourceBuildEnv, ...nonInteractiveEnv },
    temporaryPaths,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.onOutput ? { onOutput: options.onOutput } : {}),
    ...(options.keepOutputChars === undefined ? {} : { keepOutputChars: options.keepOutputChars }),
  })
}

/**
 * Bundles a worker offline (`wrangler deploy --dry-run --outdir`), as `wrangler deploy` would ship
 * it. Serving the bundle (`noBundle`) keeps `wrangler dev` from rebuilding and restarting the
 * isolate mid-run whenever a source file it imports changes.
 */
export async function bundleWorker(options: {
  readonly configPath: string
  readonly outDir: string
}): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let output = ''
    const child = spawn(
      process.execPath,
      [wranglerCliPath(), 'deploy', '--dry-run', '-c', options.configPath, '--outdir', options.outDir],
      {
        cwd: repositoryRoot,
        env: { ...process.env, ...offlineWranglerEnv, ...sourceBuildEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    child.stdout?.on('data', (data: Buffer) => (output += data.toString()))
    child.stderr?.on('data', (data: Buffer) => (output += data.toString()))
    child.once('error', reject)
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`wrangler bundling failed (${code}):\n${output}`)),
    )
  })
}
