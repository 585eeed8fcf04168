// `npm start`: builds the demo page, serves it on 127.0.0.1 (COOP/COEP, with ORT's wasm files and
// the embedded default model package beside it), starts the edge worker with `wrangler dev`
// (offline) on the same package, and prints the URL. Ctrl-C stops both.
//
//   npm start                      default ports (5173 for the page, 8787 for the worker)
//   npm start -- --port 8080 --edge-port 9000 --model ./my-package
import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ensureDefaultPackage } from '../builder/default-package.ts'
import { usableCacheDir } from '../client-runtime/store/node-store.ts'
import { buildDemo, demoModelPath, demoMounts } from './build.ts'
import { type EdgeWorker, startEdgeWorker, warmEdgeWorker } from './edge-worker.ts'
import { type StaticServer, startStaticServer } from './static-server.ts'

const usage = `Usage: npm start [-- --port N] [--edge-port N] [--model FOLDER] [--dtype D] [--no-edge]

Builds the demo page and serves it on http://127.0.0.1:<port>/ with the model package at
/models/default/, and starts the edge worker (wrangler dev, offline) on the same package.
  --port N        port of the page (default 5173; 0 picks a free one)
  --edge-port N   port of the edge worker (default 8787; 0 picks a free one)
  --model FOLDER  a model package folder instead of the embedded default
  --dtype D       weight format for both sides (default: each side's fastest the package has:
                  q4 on ondevice's WebAssembly engine, on WebGPU (q4f16 with shader-f16) and
                  on the edge; q8 where onnxruntime-web's WASM runs a package the engine does
                  not cover); the same on both keeps a handoff token-exact
  --no-edge       serve the page only (every answer then runs on the device)`

async function main(argv: readonly string[]): Promise<number> {
  let values: {
    port?: string
    'edge-port'?: string
    model?: string
    dtype?: string
    'no-edge'?: boolean
    help?: boolean
  }
  try {
    ;({ values } = parseArgs({
      args: [...argv],
      options: {
        port: { type: 'string' },
        'edge-port': { type: 'string' },
        model: { type: 'string' },
        dtype: { type: 'string' },
        'no-edge': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${usage}`)
    return 2
  }
  if (values.help) {
    console.log(usage)
    return 0
  }
  const port = parsePort('--port', values.port, 5173)
  const edgePort = parsePort('--edge-port', values['edge-port'], 8787)
  if (port === undefined || edgePort === undefined) return 2

  // Unset, each side loads the format fastest for its backend; set, both load the same weights.
  const dtype = values.dtype
  const startedAt = Date.now()
  console.log('Building the demo page…')
  const outDir = await buildDemo()
  let packageDirectory: string
  if (values.model !== undefined) {
    packageDirectory = resolve(values.model)
  } else {
    console.log('Preparing the embedded default model package (built once, then cached)…')
    packageDirectory = await ensureDefaultPackage({ cacheDir: await usableCacheDir() })
  }

  let server: StaticServer | undefined
  let edge: EdgeWorker | undefined
  let stopping = false
  const stop = async (code: number) => {
    if (stopping) return
    stopping = true
    await Promise.allSettled([edge?.stop(), server?.close()])
    process.exit(code)
  }
  process.on('SIGINT', () => void stop(0))
  process.on('SIGTERM', () => void stop(0))

  try {
    server = await startStaticServer({ port, mounts: demoMounts(outDir, packageDirectory) })
    const modelUrl = `${server.url}${demoModelPath}`
    if (!values['no-edge']) {
      console.log('Starting the edge worker (wrangler dev, offline)…')
      edge = await startEdgeWorker({
        modelUrl,
        // The page may be opened as localhost too.
        allowedOrigins: [server.url, server.url.replace('127.0.0.1', 'localhost')],
        port: edgePort,
        ...(dtype === undefined ? {} : { variables: { MODEL_DTYPE: dtype } }),
      })
    }
    await writeFile(
      join(outDir, 'demo-config.json'),
      JSON.stringify({ model: demoModelPath, edge: edge?.url ?? '', dtype: dtype ?? '' }),
    )
    console.log('')
    console.log(`  ondevice demo   ${server.url}/`)
    console.log(`  model package   ${modelUrl}  (${packageDirectory})`)
    console.log(
      `  edge worker     ${edge === undefined ? 'off (--no-edge)' : `${edge.url}/v1/chat/completions`}`,
    )
    if (values.model === undefined) {
      console.log('')
      console.log("  The embedded default is a tiny test model: its text is not meaningful. Point the page's")
      console.log('  "Model package URL" at a real package (README: running a real model) for real answers.')
    }
    console.log('')
    console.log(`Ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s. Ctrl-C stops both.`)
    if (edge !== undefined) {
      // A cold isolate loads the model on its first request: do it now, not on the first answer.
      const edgeUrl = edge.url
      warmEdgeWorker(edgeUrl).then(
        (milliseconds) =>
          console.log(`The edge worker loaded the model in ${(milliseconds / 1000).toFixed(1)} s.`),
        (error: unknown) =>
          console.error(
            `The edge worker could not load the model: ${error instanceof Error ? error.message : String(error)}`,
          ),
      )
    }
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error))
    await stop(1)
    return 1
  }
  return new Promise<number>(() => {
    // Runs until Ctrl-C.
  })
}

function parsePort(flag: string, value: string | undefined, fallback: number): number | undefined {
  if (value === undefined) return fallback
  const port = Number(value)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`${flag} must be a port number from 0 to 65535 (got ${JSON.stringify(value)}).`)
    return undefined
  }
  return port
}

process.exitCode = await main(process.argv.slice(2))
