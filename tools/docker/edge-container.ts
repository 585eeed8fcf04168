// The edge container on this machine's Docker: build the image from the repository's Dockerfile
// (on a registry-free base from tools/docker/base-image.sh, or any `--base`), run it with a
// package folder mounted read-only on 127.0.0.1, stop it by its id. Used by `ondevice edge
// --runtime container`, the container tests and the edge benchmark. Development tooling.
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, repositoryRoot } from '../wrangler-dev.ts'

const run = promisify(execFile)

/** The base image built from Debian packages + the npm `node` binary (tools/docker/base-image.sh). */
export const localBaseImage = 'ondevice-node-base:local'
export const defaultEdgeImage = 'ondevice-edge:local'

async function docker(args: readonly string[], timeoutMs = 120_000): Promise<string> {
  const { stdout } = await run('docker', [...args], {
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  })
  return stdout.trim()
}

/** Throws, saying how to fix it, when Docker is missing or dockerd is not running. */
export async function requireDocker(): Promise<void> {
  try {
    await docker(['info', '--format', '{{.ServerVersion}}'], 20_000)
  } catch (error) {
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error)
    throw new Error(
      `Docker is not usable here (${detail}). Run \`bash scripts/setup-system.sh\`: it installs docker.io and starts dockerd with published ports on 127.0.0.1.`,
    )
  }
}

/** Runs a command, streaming nothing; rejects with its output when it fails. */
function spawnChecked(command: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { cwd: repositoryRoot, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000)
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(output)
      else reject(new Error(`${command} ${args.join(' ')} failed (${code ?? 'killed'}):\n${output}`))
    })
  })
}

/** Builds (or finds up to date) the registry-free base image. First time: about a minute. */
export async function ensureLocalBaseImage(): Promise<void> {
  await requireDocker()
  await spawnChecked('bash', [join(repositoryRoot, 'tools/docker/base-image.sh'), localBaseImage], 900_000)
}

/** The Dockerfile's path when the build context lacks it (an installed package ships none). */
export function missingDockerfile(): string | undefined {
  const path = join(repositoryRoot, 'Dockerfile')
  return existsSync(path) ? undefined : path
}

export interface BuiltImage {
  readonly tag: string
  readonly buildMs: number
  readonly sizeBytes: number
}

/**
 * `docker build` of the repository's Dockerfile. `base` is the BASE build argument (default: the
 * local registry-free base, built first when missing). Docker's layer cache makes a rebuild with
 * unchanged package-lock.json a matter of seconds.
 */
export async function buildEdgeImage(
  options: { readonly tag?: string; readonly base?: string } = {},
): Promise<BuiltImage> {
  const tag = options.tag ?? defaultEdgeImage
  const base = options.base ?? localBaseImage
  if (base === localBaseImage) await ensureLocalBaseImage()
  else await requireDocker()
  const started = Date.now()
  // Host networking for the build: npm ci reaches the registry the way this machine does.
  await spawnChecked(
    'docker',
    ['build', '--network', 'host', '--build-arg', `BASE=${base}`, '-t', tag, repositoryRoot],
    900_000,
  )
  const buildMs = Date.now() - started
  const sizeBytes = Number(await docker(['image', 'inspect', '-f', '{{.Size}}', tag]))
  return { tag, buildMs, sizeBytes }
}

export interface EdgeContainer {
  readonly id: string
  /** http://127.0.0.1:PORT */
  readonly url: string
  /** Milliseconds from `docker run` to /healthz 200. */
  readonly startMs: number
  /** The container's output so far. */
  logs(): Promise<string>
  /** The host process id of `ondevice serve` inside (to crash it as a fault would). */
  serverPid(): Promise<number>
  /** How many times Docker restarted it (its restart policy). */
  restartCount(): Promise<number>
  /** Stops and removes it (by id). */
  stop(): Promise<void>
}

export interface RunEdgeContainerOptions {
  readonly image?: string
  /** The package folder, mounted read-only at /model. */
  readonly modelDir: string
  /** Host port on 127.0.0.1; default a free one. */
  readonly port?: number
  /** Environment of `ondevice serve` (API_KEYS, MODEL_ID, MAX_CONCURRENT, ...). */
  readonly env?: Readonly<Record<string, string>>
  /** Extra `ondevice serve` arguments after --model /model (e.g. --dtype q4). */
  readonly serveArgs?: readonly string[]
  /** Restart the server when it dies (what a platform does for an instance). Default true. */
  readonly restart?: boolean
  /** How long to wait for /healthz 200. Default 120 s. */
  readonly timeoutMs?: number
  readonly name?: string
}

/** The image's CMD (Dockerfile): `ondevice serve` on the container's port 8787, the package at /model. */
export const serveCommand = [
  'node',
  'cli/bin.js',
  'serve',
  '--host',
  '0.0.0.0',
  '--port',
  '8787',
  '--model',
  '/model',
]

/** `docker run` on 127.0.0.1 with the package mounted; resolves once /healthz answers 200. */
export async function runEdgeContainer(options: RunEdgeContainerOptions): Promise<EdgeContainer> {
  const port = options.port ?? (await freePort())
  const envArgs = Object.entries(options.env ?? {}).flatMap(([name, value]) => ['-e', `${name}=${value}`])
  const started = Date.now()
  const id = await docker([
    'run',
    '--detach',
    ...(options.restart === false ? [] : ['--restart', 'on-failure']),
    ...(options.name ? ['--name', options.name] : []),
    '--publish',
    `127.0.0.1:${port}:8787`,
    '--volume',
    `${options.modelDir}:/model:ro`,
    ...envArgs,
    options.image ?? defaultEdgeImage,
    // The image's whole command (it has no ENTRYPOINT; see the Dockerfile), then the extras.
    ...serveCommand,
    ...(options.serveArgs ?? []),
  ])
  const url = `http://127.0.0.1:${port}`
  const container: EdgeContainer = {
    id,
    url,
    startMs: 0,
    logs: async () => {
      const { stdout, stderr } = await run('docker', ['logs', id], { maxBuffer: 64 * 1024 * 1024 })
      return stdout + stderr
    },
    serverPid: async () => Number(await docker(['inspect', '-f', '{{.State.Pid}}', id])),
    restartCount: async () => Number(await docker(['inspect', '-f', '{{.RestartCount}}', id])),
    stop: async () => {
      await docker(['rm', '--force', id], 60_000).catch(() => undefined)
    },
  }
  try {
    // A server that exits (a bad package, a wrong flag) makes Docker restart it: fail at once
    // with its output instead of waiting out the timeout.
    await waitHealthy(url, options.timeoutMs ?? 120_000, async () => {
      const state = await docker(['inspect', '-f', '{{.State.Running}} {{.RestartCount}}', id])
      if (state !== 'true 0') throw new Error(`The container's server exited before it served ${url}.`)
    })
  } catch (error) {
    const logs = await container.logs().catch(() => '')
    await container.stop()
    throw new Error(`${(error as Error).message}\nContainer output:\n${logs}`)
  }
  return { ...container, startMs: Date.now() - started }
}

/** Polls `${url}/healthz` until it answers 200; `alive` (checked each second) throws to give up early. */
export async function waitHealthy(
  url: string,
  timeoutMs: number,
  alive?: () => Promise<void>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let checkedAt = 0
  for (;;) {
    if (alive && Date.now() - checkedAt >= 1000) {
      checkedAt = Date.now()
      await alive()
    }
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) })
      await response.body?.cancel()
      if (response.ok) return
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`${url}/healthz did not answer 200 within ${timeoutMs} ms.`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Ids of running containers from `image` (to check that nothing is left behind). */
export async function runningContainers(image: string = defaultEdgeImage): Promise<string[]> {
  const output = await docker(['ps', '--quiet', '--filter', `ancestor=${image}`])
  return output === '' ? [] : output.split('\n')
}
