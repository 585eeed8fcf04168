// `ondevice edge` (`npm run edge -- --model DIR`): the edge worker on this machine in one command,
// the way it runs on Cloudflare. The package folder is served over HTTP on 127.0.0.1 and the
// Worker runs under `wrangler dev` (workerd, offline) with that URL as its model source, the same
// source the demo uses, so no R2 upload is needed. A package too large for a Worker isolate (or
// --runtime container) runs in a container: the repository's Dockerfile built and run on this
// machine's Docker (`ondevice serve` in it, the package mounted read-only), with the Worker in
// front forwarding to it as it forwards to a Cloudflare Container in production. Ctrl-C stops all.
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { chooseDtype } from '../../client-runtime/dtype.ts'
import { usableCacheDir } from '../../client-runtime/store/node-store.ts'
import { InvalidArgumentError, ModelError, OndeviceError } from '../../core/errors.ts'
import { modelIdFromLocation } from '../../core/model-id.ts'
import { parseModelConfig } from '../../core/model-package.ts'
import { startEdgeWorker, warmEdgeWorker } from '../../demo/edge-worker.ts'
import { startStaticServer } from '../../demo/static-server.ts'
import { formatBytes } from '../../sdk/route.ts'
import {
  buildEdgeImage,
  type EdgeContainer,
  localBaseImage,
  missingDockerfile,
  runEdgeContainer,
} from '../../tools/docker/edge-container.ts'
import { findWrangler, portUnavailable, wranglerVersionWarning } from '../../tools/wrangler-dev.ts'
import { engineCoversModelType } from '../../wasm/engine/session.ts'
import {
  describeIsolateMemory,
  estimateIsolateMemory,
  isolateMemoryBytes,
  type RuntimeManifest,
} from '../../worker/container/choose-runtime.ts'
import { checkAllowedOrigins } from '../../worker/options.ts'

export const help = `Usage: ondevice edge [--model DIR] [--port P] [--allowed-origins ORIGINS] [options]
       npm run edge -- --model DIR

Runs the edge worker locally under wrangler dev (workerd, offline) on 127.0.0.1, serving the
package folder DIR as its model source (a local URL: nothing to upload), and prints its URL.
Ctrl-C stops it.

Options:
  --model DIR              A model package folder (default: the embedded default package,
                           a tiny random-weight model whose text is not meaningful)
  --model-id ID            The id clients send as "model" (default: ondevice-default for the
                           embedded package, else the folder's name)
  --port P                 Port of the worker (default 8787; 0 picks a free one; one that
                           something else listens on is refused, exit 2)
  --allowed-origins LIST   Browser origins allowed to call it (CORS), comma-separated, e.g.
                           http://localhost:5173 (default: none: only non-browser clients)
  --dtype D[,D]            Weight format (default: the fastest the package has for the engine
                           that runs it: q4 on ondevice's engine, q8 on onnxruntime-web; in a
                           container, the fastest for --backend); several: the first is
                           the default, the others answer requests that name them
                           (ondevice_format)
  --runtime R              auto (default: a container when what the isolate would hold for
                           the package is over its 128 MB), isolate, or container
  --instances N            Containers the Worker spreads conversations over (default 1)
  --backend B[,B]          The container's engine: native (onnxruntime-node, default), wasm
                           (ondevice's WebAssembly engine) or ort-wasm; several as --dtype
  --base IMAGE             Base image of the container build (default: the Dockerfile's, a
                           public Node image); \`local\` builds one from Debian packages for a
                           machine without an image registry (tools/docker/base-image.sh)
  --help, -h               Show this help

Environment: API_KEYS (comma-separated bearer keys, each at least 16 characters; none = open).
They reach wrangler in a file only this user can read (--env-file), never on its command line.
A Worker isolate has ${isolateMemoryBytes / 1e6} MB: a package that needs more there (the Worker, its
tokenizer, the model and its load, as EDGE_RUNTIME "auto" counts them) runs in a container
(Docker, started here) behind the Worker; docs/worker.md has the details.`

type Manifest = RuntimeManifest

async function readManifest(folder: string): Promise<Manifest> {
  const folderExists = await stat(folder).then(
    (info) => info.isDirectory(),
    () => false,
  )
  if (!folderExists) {
    throw new InvalidArgumentError('model', `--model ${folder} is not a folder: pass a model package folder.`)
  }
  let text: string
  try {
    text = await readFile(resolve(folder, 'manifest.json'), 'utf8')
  } catch {
    throw new ModelError(
      'model_invalid',
      `${folder} has no manifest.json: the edge verifies every file against it. Build the package with \`ondevice convert\` or \`ondevice fixture\`.`,
    )
  }
  try {
    return JSON.parse(text) as Manifest
  } catch (error) {
    throw new ModelError(
      'model_invalid',
      `manifest.json of ${folder} is not valid JSON: ${(error as Error).message}.`,
    )
  }
}

/** config.json's model_type, or undefined when the folder has none (the worker's load then says so). */
async function readModelType(folder: string): Promise<string | undefined> {
  const text = await readFile(resolve(folder, 'config.json'), 'utf8').catch(() => undefined)
  return text === undefined ? undefined : parseModelConfig(text).modelType
}

/** The flags this command's parser accepts: every one is in `help` (cli/help.test.ts). */
export const options = {
  model: { type: 'string' },
  'model-id': { type: 'string' },
  port: { type: 'string' },
  'allowed-origins': { type: 'string' },
  dtype: { type: 'string' },
  runtime: { type: 'string' },
  instances: { type: 'string' },
  backend: { type: 'string' },
  base: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options,
    strict: true,
  })
  if (values.help) {
    process.stdout.write(`${help}\n`)
    return 0
  }
  const port = values.port === undefined ? 8787 : Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError('port', `--port must be an integer from 0 to 65535, got '${values.port}'.`)
  }
  // Before anything starts: otherwise the readiness check can reach whatever holds the port (an
  // earlier `ondevice edge`, `ondevice serve`) and report its answers, or "Ready", as this worker's.
  const busy = port === 0 ? undefined : await portUnavailable(port)
  if (busy !== undefined) {
    throw new InvalidArgumentError(
      'port',
      `Cannot run the edge worker on 127.0.0.1:${port}: something else listens there (${busy}), such as another \`ondevice edge\` or \`ondevice serve\`. Stop it, or pick another port with --port (0 picks a free one).`,
    )
  }
  const runtime = values.runtime ?? 'auto'
  if (runtime !== 'auto' && runtime !== 'isolate' && runtime !== 'container') {
    throw new InvalidArgumentError(
      'runtime',
      `--runtime must be auto, isolate or container, got '${runtime}'.`,
    )
  }
  const instances = values.instances === undefined ? 1 : Number(values.instances)
  if (!Number.isInteger(instances) || instances < 1 || instances > 16) {
    throw new InvalidArgumentError(
      'instances',
      `--instances must be an integer from 1 to 16, got '${values.instances}'.`,
    )
  }
  // Lists: the first is the default; the container serves the others to requests naming them.
  const backends = (values.backend ?? 'native').split(',').map((entry) => entry.trim())
  for (const backend of backends) {
    if (backend !== 'native' && backend !== 'wasm' && backend !== 'ort-wasm') {
      throw new InvalidArgumentError(
        'backend',
        `--backend takes native, wasm or ort-wasm (comma-separated, the default first), got '${backend}'.`,
      )
    }
  }
  const backend = backends.join(',')
  const dtypes = values.dtype === undefined ? [] : values.dtype.split(',').map((entry) => entry.trim())
  const allowedOrigins = (values['allowed-origins'] ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin !== '')
  // The server's own rule (ALLOWED_ORIGINS), extension and app schemes included.
  checkAllowedOrigins(allowedOrigins, '--allowed-origins')

  let folder: string
  let modelId = values['model-id']
  if (values.model === undefined) {
    const defaults = await import('../../builder/default-package.ts')
    process.stderr.write(`No --model: serving ${defaults.defaultPackageDescription}.\n`)
    folder = await defaults.ensureDefaultPackage({ cacheDir: await usableCacheDir() })
    modelId ??= 'ondevice-default'
  } else {
    folder = resolve(values.model)
    // The device's and the Worker's default id for this folder (core/model-id.ts).
    modelId ??= modelIdFromLocation(folder) ?? 'model'
  }
  const manifest = await readManifest(folder)
  const missing = dtypes.find((entry) => manifest.dtypes !== undefined && !manifest.dtypes.includes(entry))
  if (missing !== undefined) {
    throw new InvalidArgumentError(
      'dtype',
      `${folder} holds ${manifest.dtypes?.join(', ') || 'no listed weight formats'}; not ${missing}. Pass --dtype with ones it holds.`,
    )
  }
  // The choice the edge worker makes itself (worker/edge-model.ts): the WebAssembly engine where it
  // covers the architecture, else onnxruntime-web, each with its own fastest format.
  const modelType = await readModelType(folder)
  const dtype =
    dtypes[0] ??
    (await chooseDtype({
      backend: modelType !== undefined && engineCoversModelType(modelType) ? 'wasm' : 'ort-wasm',
      modelType,
      listed: manifest.dtypes,
      exists: (path) =>
        stat(resolve(folder, path)).then(
          () => true,
          () => false,
        ),
      source: folder,
    }))
  // What the Worker itself decides with EDGE_RUNTIME "auto" (worker/container/choose-runtime.ts):
  // everything the isolate would hold for every format it serves, against its 128 MB.
  const isolateDtypes = dtypes.length > 0 ? dtypes : [dtype]
  const estimate = estimateIsolateMemory(manifest, isolateDtypes)
  const overBudget = estimate !== undefined && estimate.bytes > isolateMemoryBytes
  if (runtime === 'isolate' && overBudget) {
    throw new InvalidArgumentError(
      'model',
      `${folder} in ${isolateDtypes.join(' + ')} needs ${describeIsolateMemory(estimate)} in a Worker isolate: more than its ${isolateMemoryBytes / 1e6} MB. Run it in a container: \`npm run edge -- --model ${values.model} --runtime container\`.`,
    )
  }
  if (runtime === 'container' || (runtime === 'auto' && overBudget)) {
    return runContainerEdge({
      folder,
      modelId,
      port,
      allowedOrigins,
      instances,
      backend,
      ...(values.dtype === undefined ? {} : { dtype: values.dtype }),
      ...(values.base === undefined ? {} : { base: values.base === 'local' ? localBaseImage : values.base }),
      reason:
        runtime === 'container'
          ? '--runtime container'
          : `${isolateDtypes.join(' + ')} needs ${estimate === undefined ? 'more' : describeIsolateMemory(estimate)}, over the isolate's ${isolateMemoryBytes / 1e6} MB`,
    })
  }

  const packageServer = await startStaticServer({
    mounts: [{ prefix: '/model/', directory: folder }],
  })
  const apiKeys = process.env['API_KEYS']
  const secretsDirectory = await mkdtemp(join(tmpdir(), 'ondevice-edge-'))
  let edge: Awaited<ReturnType<typeof startEdgeWorker>> | undefined
  const stop = async (code: number): Promise<never> => {
    await Promise.allSettled([edge?.stop(), packageServer.close()])
    await rm(secretsDirectory, { recursive: true, force: true })
    process.exit(code)
  }
  process.on('SIGINT', () => void stop(0))
  process.on('SIGTERM', () => void stop(0))
  try {
    process.stderr.write('Starting the edge worker (wrangler dev, offline)…\n')
    warnOfOldWrangler()
    // Keys reach wrangler in a file (--env-file): not in the process list, not printed.
    const envFile = join(secretsDirectory, 'secrets.env')
    await writeFile(envFile, apiKeys ? `API_KEYS=${apiKeys}\n` : '', { mode: 0o600 })
    edge = await startEdgeWorker({
      modelUrl: `${packageServer.url}/model/`,
      allowedOrigins,
      port,
      modelId,
      envFile,
      variables: { MODEL_DTYPE: dtypes.length > 0 ? dtypes.join(',') : dtype },
    })
    const firstKey = apiKeys?.split(',')[0]?.trim()
    const milliseconds = await warmEdgeWorker(edge.url, {
      modelId,
      ...(firstKey ? { apiKey: firstKey } : {}),
    })
    process.stdout.write(
      [
        '',
        `  edge worker   ${edge.url}  (POST /v1/chat/completions, GET /v1/models, GET /healthz)`,
        `  model         ${modelId} (${dtype}) from ${folder}`,
        `  CORS          ${allowedOrigins.length === 0 ? 'no browser origin allowed (--allowed-origins)' : allowedOrigins.join(', ')}`,
        `  keys          ${apiKeys ? 'API_KEYS' : 'none: open to anyone who reaches 127.0.0.1'}`,
        '',
        `Ready: the model loaded in ${(milliseconds / 1000).toFixed(1)} s. Ctrl-C stops it.`,
        '',
      ].join('\n'),
    )
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
    return stop(1)
  }
  return new Promise<number>(() => {
    // Runs until Ctrl-C.
  })
}

/** Says so on stderr when the app's wrangler is older than the edge is checked with (it still runs). Throws when there is none. */
function warnOfOldWrangler(): void {
  const warning = wranglerVersionWarning(findWrangler().version)
  if (warning !== undefined) process.stderr.write(`${warning}\n`)
}

interface ContainerEdgeOptions {
  readonly folder: string
  readonly modelId: string
  readonly port: number
  readonly allowedOrigins: readonly string[]
  readonly instances: number
  readonly backend: string
  readonly dtype?: string
  readonly base?: string
  /** Why a container (printed). */
  readonly reason: string
}

/**
 * The container path: build the image, start `instances` containers on 127.0.0.1 (Docker restarts
 * one that dies, as Cloudflare starts a new instance), then the Worker in front of them with
 * EDGE_RUNTIME = "container" and their URLs (CONTAINER_URLS: wrangler dev runs no Cloudflare
 * Containers offline). The containers' only key is a fresh secret the Worker presents.
 */
async function runContainerEdge(options: ContainerEdgeOptions): Promise<number> {
  // The image is built from the repository's sources and Dockerfile, which the npm package does
  // not ship: from an installed package, say so before anything starts.
  const missing = missingDockerfile()
  if (missing !== undefined)
    throw new OndeviceError(
      'unsupported',
      `The model runs in a container here (${options.reason}), and the container image is built from an ondevice checkout's Dockerfile, which the npm package does not ship (no ${missing}). Run \`npm run edge -- --model ${options.folder} --runtime container\` in a clone of the repository, or run \`ondevice serve\` in an image of your own (docs/worker.md), or use a package that fits a Worker isolate.`,
    )
  const containers: EdgeContainer[] = []
  let edge: Awaited<ReturnType<typeof startEdgeWorker>> | undefined
  let packageServer: Awaited<ReturnType<typeof startStaticServer>> | undefined
  const secretsDirectory = await mkdtemp(join(tmpdir(), 'ondevice-edge-'))
  const stop = async (code: number): Promise<never> => {
    await Promise.allSettled([
      edge?.stop(),
      packageServer?.close(),
      ...containers.map((container) => container.stop()),
    ])
    await rm(secretsDirectory, { recursive: true, force: true })
    process.exit(code)
  }
  process.on('SIGINT', () => void stop(0))
  process.on('SIGTERM', () => void stop(0))
  try {
    process.stderr.write(
      `Running the model in a container (${options.reason}). Building the image (docker build)…\n`,
    )
    const image = await buildEdgeImage(
      options.base === undefined ? { base: 'node:24-bookworm-slim' } : { base: options.base },
    ).catch((error: unknown) => {
      const detail = error instanceof Error ? error.message : String(error)
      throw new Error(
        options.base === undefined && /pull|resolve|registry|manifest|TLS|dial/i.test(detail)
          ? `The image's base (node:24-bookworm-slim) could not be pulled: this machine reaches no image registry. Pass --base local to build one from Debian packages (tools/docker/base-image.sh).\n${detail.slice(-2000)}`
          : detail,
      )
    })
    const secret = randomBytes(32).toString('hex')
    const apiKeys = process.env['API_KEYS']
    process.stderr.write(
      `Image ${image.tag}: ${formatBytes(image.sizeBytes)}, built in ${(image.buildMs / 1000).toFixed(1)} s. Starting ${options.instances} container(s)…\n`,
    )
    const started = await Promise.allSettled(
      Array.from({ length: options.instances }, () =>
        runEdgeContainer({
          image: image.tag,
          modelDir: options.folder,
          env: { API_KEYS: secret, MODEL_ID: options.modelId },
          serveArgs: [
            '--backend',
            options.backend,
            ...(options.dtype === undefined ? [] : ['--dtype', options.dtype]),
          ],
          timeoutMs: 600_000,
        }),
      ),
    )
    for (const outcome of started) if (outcome.status === 'fulfilled') containers.push(outcome.value)
    const failed = started.find((outcome) => outcome.status === 'rejected')
    if (failed) throw (failed as PromiseRejectedResult).reason
    // Secrets reach wrangler in a file (--env-file): not in the process list, not printed.
    const envFile = join(secretsDirectory, 'secrets.env')
    await writeFile(envFile, `CONTAINER_SECRET=${secret}\n${apiKeys ? `API_KEYS=${apiKeys}\n` : ''}`, {
      mode: 0o600,
    })
    // The Worker keeps a model source, as it has R2 in production; with EDGE_RUNTIME "container"
    // it reads nothing from it: every chat goes to the containers.
    packageServer = await startStaticServer({ mounts: [{ prefix: '/model/', directory: options.folder }] })
    process.stderr.write('Starting the edge worker (wrangler dev, offline) in front of them…\n')
    warnOfOldWrangler()
    edge = await startEdgeWorker({
      modelUrl: `${packageServer.url}/model/`,
      allowedOrigins: options.allowedOrigins,
      port: options.port,
      modelId: options.modelId,
      envFile,
      variables: {
        EDGE_RUNTIME: 'container',
        CONTAINER_URLS: containers.map((container) => container.url).join(','),
      },
    })
    const firstKey = apiKeys?.split(',')[0]?.trim()
    const milliseconds = await warmEdgeWorker(edge.url, {
      modelId: options.modelId,
      ...(firstKey ? { apiKey: firstKey } : {}),
    })
    process.stdout.write(
      [
        '',
        `  edge worker   ${edge.url}  (POST /v1/chat/completions, GET /v1/models, GET /healthz)`,
        `  model         ${options.modelId} from ${options.folder}, in ${options.instances} container(s) (${options.backend}${options.dtype ? `, ${options.dtype}` : ''})`,
        `  containers    ${containers.map((container) => `${container.id.slice(0, 12)} ${container.url} (up in ${(container.startMs / 1000).toFixed(1)} s)`).join('; ')}`,
        `  affinity      send X-Ondevice-Affinity: <conversation id> to keep a conversation on one instance`,
        `  CORS          ${options.allowedOrigins.length === 0 ? 'no browser origin allowed (--allowed-origins)' : options.allowedOrigins.join(', ')}`,
        `  keys          ${apiKeys ? 'API_KEYS' : 'none: open to anyone who reaches 127.0.0.1'}; the containers accept only the Worker`,
        '',
        `Ready: first answer through the Worker in ${(milliseconds / 1000).toFixed(1)} s. Ctrl-C stops the Worker and the containers.`,
        '',
      ].join('\n'),
    )
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
    return stop(1)
  }
  return new Promise<number>(() => {
    // Runs until Ctrl-C.
  })
}
