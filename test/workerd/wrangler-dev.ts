// Starts the real edge worker under `wrangler dev` (workerd) on 127.0.0.1, fully offline, with a
// config written to a temp folder: local R2 pre-seeded with a package, and static assets. Stops
// it by PID. Used by the workerd integration test; each instance pays for loading ORT's wasm.
import { type ChildProcess, spawn } from 'node:child_process'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url))

/** Keeps wrangler offline and quiet (DESIGN.md section 6). */
export const offlineWranglerEnv = {
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  NO_UPDATE_NOTIFIER: '1',
} as const

/**
 * The path of wrangler's CLI script, from its package.json's `bin` (wrangler 4.1xx exports only
 * `.` and `./package.json`, so `wrangler/bin/wrangler.js` cannot be resolved directly).
 */
export function wranglerCliPath(): string {
  const require = createRequire(import.meta.url)
  const packageJsonPath = require.resolve('wrangler/package.json')
  const manifest = require(packageJsonPath) as { bin: { wrangler: string } }
  return join(dirname(packageJsonPath), manifest.bin.wrangler)
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export interface WorkerConfigOptions {
  readonly directory: string
  readonly assetsDirectory: string
  readonly vars: Readonly<Record<string, string>>
}

/**
 * Bundles this repository's worker/index.ts once (`wrangler deploy --dry-run --outdir`, offline)
 * and writes a wrangler.json that serves that bundle with R2 and assets bindings. Serving a
 * finished bundle (`no_bundle`) keeps `wrangler dev` from rebuilding and restarting mid-test when
 * a source file changes, and the two workers of a test share one build.
 */
export async function writeWorkerConfig(options: WorkerConfigOptions): Promise<string> {
  const bundleDirectory = join(options.directory, 'bundle')
  const compatibility = { compatibility_date: '2025-09-01', compatibility_flags: ['enable_request_signal'] }
  const rules = [{ type: 'CompiledWasm', globs: ['**/*.wasm'], fallthrough: true }]
  const buildConfig = join(options.directory, 'build.json')
  await writeFile(
    buildConfig,
    JSON.stringify({
      name: 'ondevice-edge-test',
      main: join(repositoryRoot, 'worker/index.ts'),
      ...compatibility,
      rules,
    }),
  )
  const wrangler = wranglerCliPath()
  await new Promise<void>((resolve, reject) => {
    let output = ''
    const child = spawn(
      process.execPath,
      [wrangler, 'deploy', '--dry-run', '-c', buildConfig, '--outdir', bundleDirectory],
      {
        cwd: repositoryRoot,
        env: { ...process.env, ...offlineWranglerEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    child.stdout?.on('data', (data: Buffer) => (output += data.toString()))
    child.stderr?.on('data', (data: Buffer) => (output += data.toString()))
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`wrangler bundling failed (${code}):\n${output}`)),
    )
  })
  const path = join(options.directory, 'wrangler.json')
  const config = {
    name: 'ondevice-edge-test',
    main: join(bundleDirectory, 'index.js'),
    ...compatibility,
    no_bundle: true,
    find_additional_modules: true,
    base_dir: bundleDirectory,
    rules,
    r2_buckets: [{ binding: 'MODEL_BUCKET', bucket_name: 'ondevice-models' }],
    assets: { directory: options.assetsDirectory, binding: 'ASSETS', run_worker_first: true },
    vars: options.vars,
  }
  await writeFile(path, JSON.stringify(config, null, 2))
  return path
}

async function listFiles(root: string, folder = root): Promise<string[]> {
  const files: string[] = []
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const full = join(folder, entry.name)
    if (entry.isDirectory()) files.push(...(await listFiles(root, full)))
    else files.push(relative(root, full).split(sep).join('/'))
  }
  return files
}

/** Puts every file of `packageDir` into local R2 under `prefix`, where `wrangler dev --persist-to stateDir` reads it. */
export async function seedLocalR2(
  configPath: string,
  stateDir: string,
  packageDir: string,
  prefix: string,
): Promise<void> {
  Object.assign(process.env, offlineWranglerEnv)
  const { getPlatformProxy } = await import('wrangler')
  // wrangler dev --persist-to X keeps its state in X/v3; getPlatformProxy takes that folder itself.
  const proxy = await getPlatformProxy<{
    MODEL_BUCKET: { put(key: string, value: Uint8Array): Promise<unknown> }
  }>({
    configPath,
    persist: { path: join(stateDir, 'v3') },
  })
  try {
    for (const file of await listFiles(packageDir)) {
      await proxy.env.MODEL_BUCKET.put(
        `${prefix}${file}`,
        new Uint8Array(await readFile(join(packageDir, file))),
      )
    }
  } finally {
    await proxy.dispose()
  }
}

export interface RunningWorker {
  readonly url: string
  readonly output: () => string
  stop(): Promise<void>
}

/** Spawns `wrangler dev` and waits until /healthz answers. */
export async function startWranglerDev(options: {
  readonly configPath: string
  readonly stateDir: string
  readonly vars?: Readonly<Record<string, string>>
  readonly timeoutMs?: number
}): Promise<RunningWorker> {
  const port = await freePort()
  const wrangler = wranglerCliPath()
  // An explicit inspector port too: the default (9229, then 9230) collides when tests run side by side.
  const inspectorPort = await freePort()
  const args = [
    wrangler,
    'dev',
    '-c',
    options.configPath,
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--inspector-port',
    String(inspectorPort),
    '--persist-to',
    options.stateDir,
  ]
  for (const [name, value] of Object.entries(options.vars ?? {})) args.push('--var', `${name}:${value}`)
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: repositoryRoot,
    env: { ...process.env, ...offlineWranglerEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (data: Buffer) => (output += data.toString()))
  child.stderr?.on('data', (data: Buffer) => (output += data.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const url = `http://127.0.0.1:${port}`
  const stop = async () => {
    if (child.exitCode === null && child.pid !== undefined) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
  }
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${output}`)
    try {
      const response = await fetch(`${url}/healthz`)
      await response.body?.cancel()
      if (response.status === 200) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(
        `wrangler dev did not answer /healthz within ${options.timeoutMs ?? 60_000} ms:\n${output}`,
      )
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return { url, output: () => output, stop }
}
