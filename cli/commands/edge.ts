// `ondevice edge` (`npm run edge -- --model DIR`): the edge worker on this machine in one command,
// the way it runs on Cloudflare. The package folder is served over HTTP on 127.0.0.1 and the
// Worker runs under `wrangler dev` (workerd, offline) with that URL as its model source, the same
// source the demo uses, so no R2 upload is needed. A package too large for a Worker isolate is
// refused with what to run instead (`ondevice serve`, the same app on Node). Ctrl-C stops both.
import { readFile, stat } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { chooseDtype } from '../../client-runtime/dtype.ts'
import { defaultCacheDir } from '../../client-runtime/store/node-store.ts'
import { InvalidArgumentError, ModelError } from '../../core/errors.ts'
import { parseModelConfig } from '../../core/model-package.ts'
import { startEdgeWorker, warmEdgeWorker } from '../../demo/edge-worker.ts'
import { startStaticServer } from '../../demo/static-server.ts'
import { formatBytes } from '../../sdk/route.ts'
import { engineCoversModelType } from '../../wasm/engine/session.ts'

const help = `Usage: ondevice edge [--model DIR] [--port P] [--allowed-origins ORIGINS] [options]
       npm run edge -- --model DIR

Runs the edge worker locally under wrangler dev (workerd, offline) on 127.0.0.1, serving the
package folder DIR as its model source (a local URL: nothing to upload), and prints its URL.
Ctrl-C stops it.

Options:
  --model DIR              A model package folder (default: the embedded default package,
                           a tiny random-weight model whose text is not meaningful)
  --model-id ID            The id clients send as "model" (default: ondevice-default for the
                           embedded package, else the folder's name)
  --port P                 Port of the worker (default 8787; 0 picks a free one)
  --allowed-origins LIST   Browser origins allowed to call it (CORS), comma-separated, e.g.
                           http://localhost:5173 (default: none: only non-browser clients)
  --dtype D                Weight format (default: the fastest on WASM the package has, q8)
  --help, -h               Show this help

Environment: API_KEYS (comma-separated bearer keys, each at least 16 characters; none = open).
They reach wrangler as --var arguments, which other users of this machine can see in the process
list: use development keys here, never production ones.
A Worker isolate has 128 MB: a package whose estimate is over ${formatBytes(isolateBudgetBytes())}
is refused here; run it with \`ondevice serve --model DIR\` (the same API on Node).`

/** What a package may need in a 128 MB isolate, leaving room for the runtime and the JS heap. */
function isolateBudgetBytes(): number {
  return 100_000_000
}

interface Manifest {
  readonly dtypes?: readonly string[]
  readonly estimatedMemoryBytes?: Readonly<Record<string, number>>
}

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

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      'model-id': { type: 'string' },
      port: { type: 'string' },
      'allowed-origins': { type: 'string' },
      dtype: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
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
  const allowedOrigins = (values['allowed-origins'] ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin !== '')
  for (const origin of allowedOrigins) {
    let parsed: URL | undefined
    try {
      parsed = new URL(origin)
    } catch {
      parsed = undefined
    }
    if (origin !== '*' && (parsed === undefined || parsed.origin !== origin)) {
      throw new InvalidArgumentError(
        'allowed-origins',
        `--allowed-origins takes exact origins like http://localhost:5173 (scheme, host, port; no path), got '${origin}'.`,
      )
    }
  }

  let folder: string
  let modelId = values['model-id']
  if (values.model === undefined) {
    const defaults = await import('../../builder/default-package.ts')
    process.stderr.write(`No --model: serving ${defaults.defaultPackageDescription}.\n`)
    folder = await defaults.ensureDefaultPackage({ cacheDir: defaultCacheDir() })
    modelId ??= 'ondevice-default'
  } else {
    folder = resolve(values.model)
    modelId ??= basename(folder)
  }
  const manifest = await readManifest(folder)
  if (
    values.dtype !== undefined &&
    manifest.dtypes !== undefined &&
    !manifest.dtypes.includes(values.dtype)
  ) {
    throw new InvalidArgumentError(
      'dtype',
      `${folder} holds ${manifest.dtypes.join(', ') || 'no listed weight formats'}; not ${values.dtype}. Pass --dtype with one it holds.`,
    )
  }
  // The choice the edge worker makes itself (worker/edge-model.ts): the WebAssembly engine where it
  // covers the architecture, else onnxruntime-web, each with its own fastest format.
  const modelType = await readModelType(folder)
  const dtype =
    values.dtype ??
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
  const estimate = manifest.estimatedMemoryBytes?.[dtype]
  if (estimate !== undefined && estimate > isolateBudgetBytes()) {
    throw new InvalidArgumentError(
      'model',
      `${folder} in ${dtype} needs about ${formatBytes(estimate)}: more than a Worker isolate holds (128 MB, of which ${formatBytes(isolateBudgetBytes())} for the model). Run it with \`npx ondevice serve --model ${values.model}\` (the same API on Node, any size).`,
    )
  }

  const packageServer = await startStaticServer({
    mounts: [{ prefix: '/model/', directory: folder }],
  })
  const apiKeys = process.env['API_KEYS']
  let edge: Awaited<ReturnType<typeof startEdgeWorker>> | undefined
  const stop = async (code: number): Promise<never> => {
    await Promise.allSettled([edge?.stop(), packageServer.close()])
    process.exit(code)
  }
  process.on('SIGINT', () => void stop(0))
  process.on('SIGTERM', () => void stop(0))
  try {
    process.stderr.write('Starting the edge worker (wrangler dev, offline)…\n')
    edge = await startEdgeWorker({
      modelUrl: `${packageServer.url}/model/`,
      allowedOrigins,
      port,
      modelId,
      variables: { MODEL_DTYPE: dtype, ...(apiKeys ? { API_KEYS: apiKeys } : {}) },
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
