// The demo page as the browser tests serve it (the same mounts as `npm start`): the built page at
// '/', ORT's dist files at '/ort/', a model package at '/models/default/', and a
// `demo-config.json` that tells the page where the edge worker is. One static server, 127.0.0.1,
// COOP/COEP.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildDemo, demoModelPath, demoMounts } from '../../demo/build.ts'
import { type StaticServer, startStaticServer } from '../../demo/static-server.ts'

const modelPath = demoModelPath

export interface DemoSite {
  readonly server: StaticServer
  /** Page URL (ends with '/'). */
  readonly url: string
  /** The package's URL prefix as the page sees it. */
  readonly modelUrl: string
  /** Points the page at another edge worker (rewrites demo-config.json). */
  setEdgeUrl(edgeUrl: string): Promise<void>
  /** Requests the server answered under the package's path since the last `server.clearRequests()`. */
  packageRequests(): readonly { path: string; status: number; bytes: number }[]
  close(): Promise<void>
}

export interface DemoSiteOptions {
  readonly packageDirectory: string
  readonly edgeUrl?: string
}

/** Builds the page into a temporary folder (each test file its own) and serves it. */
export async function startDemoSite(options: DemoSiteOptions): Promise<DemoSite> {
  const outDir = await mkdtemp(join(tmpdir(), 'ondevice-demo-'))
  await buildDemo({ outDir })
  const writeConfig = (edgeUrl: string | undefined) =>
    writeFile(join(outDir, 'demo-config.json'), JSON.stringify({ model: modelPath, edge: edgeUrl ?? '' }))
  await writeConfig(options.edgeUrl)
  const server = await startStaticServer({ mounts: demoMounts(outDir, options.packageDirectory) })
  return {
    server,
    url: `${server.url}/`,
    modelUrl: `${server.url}${modelPath}`,
    setEdgeUrl: writeConfig,
    packageRequests: () =>
      server.requests
        .filter((request) => request.path.startsWith(modelPath))
        .map(({ path, status, bytes }) => ({ path: path.slice(modelPath.length), status, bytes })),
    close: async () => {
      await server.close()
      await rm(outDir, { recursive: true, force: true })
    },
  }
}
