// Fresh projects outside the repository that install only the packed tarball, the way a user
// does: `npm pack` (which builds dist/ through `prepack`), then `npm install <tarball>` with the
// machine's own npm and Node (not the repository's Node 24 devDependency, not its node_modules).
import { execFile } from 'node:child_process'
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url))

/** PATH without any node_modules/.bin, so `node` and `npm` are the machine's own. */
export function machinePath(): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((entry) => entry !== '' && !entry.includes('node_modules'))
    .join(delimiter)
}

function onPath(name: string): string {
  for (const folder of machinePath().split(delimiter)) {
    const candidate = join(folder, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  throw new Error(
    `The consumer tests run the machine's own ${name} (not the repository's devDependency) and found none on PATH. ` +
      'Install Node.js >= 20.19 with npm (e.g. `sudo apt-get install nodejs npm`, or the official binaries).',
  )
}

export const machineNode = (): string => onPath('node')
export const machineNpm = (): string => onPath('npm')

/** The environment a user's shell would have: the repository's own settings removed. */
export function userEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: machinePath(), ...extra }
  // The repository's 'ondevice-source' condition points at TypeScript sources the tarball lacks.
  delete env.NODE_OPTIONS
  for (const key of Object.keys(env)) if (key.startsWith('npm_') || key.startsWith('VITEST')) delete env[key]
  return env
}

export interface RunResult {
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

/** Runs a command, rejecting with its whole output when it fails. */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<RunResult> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    execFile(
      command,
      [...args],
      {
        cwd: options.cwd,
        env: options.env ?? userEnvironment(),
        timeout: options.timeoutMs ?? 300_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error)
          reject(new Error(`${command} ${args.join(' ')} failed (${error.message}):\n${stdout}\n${stderr}`))
        else resolve({ stdout, stderr, ms: Date.now() - started })
      },
    )
  })
}

/** `npm install` in a consumer project with the machine's npm, as a user runs it (`args`: packages and flags). */
function npmInstall(
  folder: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<RunResult> {
  return run(machineNpm(), ['install', '--no-audit', '--no-fund', '--prefer-offline', ...args], {
    cwd: folder,
    env: userEnvironment(env),
  })
}

/**
 * The version of `name` the repository has installed, read from its package.json as a file (some
 * packages, openai's, do not export their package.json).
 */
export function repositoryVersion(name: string): string {
  return (
    JSON.parse(readFileSync(join(repositoryRoot, 'node_modules', name, 'package.json'), 'utf8')) as {
      version: string
    }
  ).version
}

/**
 * Adds packages to a consumer project at the versions the repository has (`names`), with the
 * machine's npm: left out of its package.json (`--no-save`), or `save: 'dev'` as devDependencies,
 * as a project a user keeps does (a wrangler project's).
 */
export function addPackages(
  folder: string,
  names: readonly string[],
  options: { readonly save?: 'dev' } = {},
): Promise<RunResult> {
  return npmInstall(folder, [
    options.save === 'dev' ? '--save-dev' : '--no-save',
    ...names.map((name) => `${name}@${repositoryVersion(name)}`),
  ])
}

let packed: Promise<string> | undefined

/**
 * `npm pack` of the repository (its prepack builds dist/): the tarball's path. Once per test run:
 * test files run in worker processes of one vitest process, so the first to get here packs into
 * a folder named after that parent and the others wait for it.
 */
export function packOnce(): Promise<string> {
  packed ??= (async () => {
    const destination = join(tmpdir(), `ondevice-pack-run-${process.ppid}`)
    const done = join(destination, 'tarball.txt')
    let owner = false
    try {
      mkdirSync(destination)
      owner = true
    } catch {}
    if (owner) {
      try {
        // The repository's npm and Node: packing is the maintainer's step, not the user's.
        const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', destination], {
          cwd: repositoryRoot,
          env: { ...process.env, NODE_OPTIONS: '' },
        })
        const [{ filename }] = JSON.parse(stdout.slice(stdout.indexOf('['))) as [{ filename: string }]
        writeFileSync(done, join(destination, filename))
      } catch (error) {
        writeFileSync(join(destination, 'failed.txt'), String(error))
        throw error
      }
    }
    for (const deadline = Date.now() + 600_000; Date.now() < deadline; ) {
      if (existsSync(done)) return readFileSync(done, 'utf8')
      if (existsSync(join(destination, 'failed.txt')))
        throw new Error(
          `npm pack failed in another test file:\n${readFileSync(join(destination, 'failed.txt'), 'utf8')}`,
        )
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    throw new Error(`npm pack did not finish within 10 minutes (${destination})`)
  })()
  return packed
}

/** Bytes under a folder. */
export function folderBytes(folder: string): number {
  let total = 0
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name)
    if (entry.isDirectory()) total += folderBytes(path)
    else if (entry.isFile()) total += statSync(path).size
  }
  return total
}

export interface ConsumerProject {
  readonly folder: string
  readonly installMs: number
  readonly nodeModulesBytes: number
  /** Writes a file into the project. */
  write(path: string, text: string): void
  remove(): void
}

/** A fresh project folder outside the repository with the tarball (and `extra` packages) installed. */
export async function createConsumerProject(
  name: string,
  extra: readonly string[] = [],
): Promise<ConsumerProject> {
  const tarball = await packOnce()
  const folder = mkdtempSync(join(tmpdir(), `ondevice-consumer-${name}-`))
  writeFileSync(
    join(folder, 'package.json'),
    `${JSON.stringify({ name: `consumer-${name}`, private: true, type: 'module' }, null, 2)}\n`,
  )
  // onnxruntime-node's install script (when it is added) would download extra binaries: skip it, as docs say.
  const { ms } = await npmInstall(folder, [tarball, ...extra], { ONNXRUNTIME_NODE_INSTALL: 'skip' })
  return {
    folder,
    installMs: ms,
    nodeModulesBytes: folderBytes(join(folder, 'node_modules')),
    write: (path, text) => {
      mkdirSync(join(folder, path, '..'), { recursive: true })
      writeFileSync(join(folder, path), text)
    },
    remove: () => rmSync(folder, { recursive: true, force: true }),
  }
}

export const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`
