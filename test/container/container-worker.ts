// What the container tests share to run the Worker with its Container Durable Object under
// `wrangler dev` (durable-object.test.ts's header says what runs for real and what is stood in
// for): Docker, the sidecar stand-in's image, and the Worker's configuration. Each test keeps its
// own image, package and lifecycle.
import { execFile } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { localBaseImage, requireDocker } from '../../tools/docker/edge-container.ts'
import { repositoryRoot } from '../../tools/wrangler-dev.ts'
import { affinityKey, instanceIndex } from '../../worker/container/affinity.ts'

const execute = promisify(execFile)

export async function docker(args: readonly string[]): Promise<string> {
  const { stdout } = await execute('docker', [...args], { timeout: 300_000, maxBuffer: 16 * 1024 * 1024 })
  return stdout.trim()
}

/**
 * requireDocker, and a default bridge with a gateway: workerd binds its container egress listener
 * to it, and a dockerd first started without --bip may record none, so that every container start
 * fails with a bare `getaddrinfo(): DNS lookup failed. host = ;`. Says what to do instead.
 */
export async function requireContainerDocker(): Promise<void> {
  await requireDocker()
  const gateway = await docker([
    'network',
    'inspect',
    'bridge',
    '--format',
    '{{range .IPAM.Config}}{{.Gateway}}{{end}}',
  ])
  if (gateway === '')
    throw new Error(
      'Docker\'s bridge network has no gateway in its IPAM config, so wrangler dev cannot start containers: restart dockerd with --bip=172.17.0.1/16 (scripts/setup-system.sh starts it so), or set "bip" in /etc/docker/daemon.json.',
    )
}

/** wrangler dev tags one cloudflare-dev/<class>:<id> image per run: the tags there are now. */
export async function wranglerDevImages(): Promise<Set<string>> {
  const list = await docker(['images', 'cloudflare-dev/*', '--format', '{{.Repository}}:{{.Tag}}'])
  return new Set(list === '' ? [] : list.split('\n'))
}

/** An affinity key that maps to instance `index` of 2, as the Worker computes it. */
export function keyFor(index: number, prefix: string): string {
  for (let n = 0; ; n++) {
    const key = `${prefix}-${n}`
    if (instanceIndex(affinityKey(new Headers({ 'x-ondevice-affinity': key }), {}), 2) === index) return key
  }
}

/** Builds the ingress sidecar's local stand-in (sidecar-stand-in.ts) as `tag`, in directory/sidecar. */
export async function buildSidecarImage(directory: string, tag: string): Promise<void> {
  await mkdir(join(directory, 'sidecar'))
  await writeFile(
    join(directory, 'sidecar', 'sidecar-stand-in.ts'),
    await readFile(join(repositoryRoot, 'test/container/sidecar-stand-in.ts')),
  )
  await writeFile(
    join(directory, 'sidecar', 'Dockerfile'),
    `FROM ${localBaseImage}\nCOPY sidecar-stand-in.ts /sidecar-stand-in.ts\nENTRYPOINT ["node", "/sidecar-stand-in.ts"]\n`,
  )
  await docker(['build', '--quiet', '--tag', tag, join(directory, 'sidecar')])
}

export interface ContainerWorkerConfig {
  /** Holds image/Dockerfile (the container's image) and gets wrangler.json and .dev.vars. */
  readonly directory: string
  readonly workerName: string
  readonly sidecarImage: string
  readonly secret: string
  readonly clientKey: string
  /** Beyond EDGE_RUNTIME and CONTAINER_INSTANCES (MODEL_ID, the CONTAINER_* settings). */
  readonly vars: Readonly<Record<string, string>>
}

/**
 * Writes the repository's container settings (wrangler.toml) for a Worker of two instances, with
 * its secrets in .dev.vars, and points wrangler at the local build wrapper and the sidecar's image
 * (no registry here). Returns the configuration's path, for startWranglerDev.
 */
export async function writeContainerWorkerConfig(options: ContainerWorkerConfig): Promise<string> {
  const config = {
    name: options.workerName,
    main: join(repositoryRoot, 'worker/index.ts'),
    compatibility_date: '2025-09-01',
    compatibility_flags: ['enable_request_signal', 'enable_ctx_exports'],
    rules: [{ type: 'CompiledWasm', globs: ['**/*.wasm'], fallthrough: true }],
    containers: [{ class_name: 'OndeviceContainer', image: './image/Dockerfile', max_instances: 2 }],
    durable_objects: { bindings: [{ name: 'ONDEVICE_CONTAINER', class_name: 'OndeviceContainer' }] },
    migrations: [{ tag: 'v1', new_sqlite_classes: ['OndeviceContainer'] }],
    vars: { EDGE_RUNTIME: 'container', CONTAINER_INSTANCES: '2', ...options.vars },
  }
  const configPath = join(options.directory, 'wrangler.json')
  await writeFile(configPath, JSON.stringify(config, null, 2))
  await writeFile(
    join(options.directory, '.dev.vars'),
    `CONTAINER_SECRET=${options.secret}\nAPI_KEYS=${options.clientKey}\n`,
  )
  // wrangler builds through this wrapper, and finds the sidecar image here instead of pulling it.
  process.env['WRANGLER_DOCKER_BIN'] = join(repositoryRoot, 'tools/docker/legacy-build.sh')
  process.env['ONDEVICE_SKIP_LOCAL_PULL'] = '1'
  process.env['MINIFLARE_CONTAINER_EGRESS_IMAGE'] = options.sidecarImage
  return configPath
}
