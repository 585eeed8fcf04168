// The browser store's memory while it verifies a large download, in Chromium: a 384 MiB weights
// file downloaded into OPFS by the store in a dedicated Web Worker (where the SDK's model worker
// runs it) must not raise the renderer's peak memory by anything near the file's size. Verifying
// it with WebCrypto's one-shot digest read the whole file into memory and the digest copied it:
// the peak rose by twice the file (400 MB: 120 -> 932 MiB), which on a phone can end the tab at
// the end of a long download. Peak memory is the renderer process's VmHWM (Linux /proc), found
// through Chromium's own process list (CDP SystemInfo.getProcessInfo).
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'
import { afterAll, describe, expect, it } from 'vitest'
import { type StaticServer, startStaticServer } from '../../demo/static-server.ts'
import { type LaunchedChromium, launchChromium } from '../../test/browser/chromium.ts'

const fileBytes = 384 * 2 ** 20
const MiB = 2 ** 20

/** A status field of a process in KiB as bytes (Linux). */
async function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024
}

let folder: string | undefined
let server: StaticServer | undefined
let chromium: LaunchedChromium | undefined

afterAll(async () => {
  await chromium?.close()
  await server?.close()
  if (folder) await rm(folder, { recursive: true, force: true })
})

describe.skipIf(!existsSync('/proc/self/status'))('the browser store verifying a large download', () => {
  it("keeps the renderer's peak memory far below the file's size", { timeout: 180_000 }, async () => {
    folder = await mkdtemp(join(tmpdir(), 'ondevice-store-memory-'))
    const weights = new Uint8Array(fileBytes)
    // Incompressible enough, cheaply: a linear congruential sequence.
    const words = new Uint32Array(weights.buffer)
    for (let i = 0, x = 12345; i < words.length; i++)
      words[i] = x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    await mkdir(join(folder, 'pkg', 'onnx'), { recursive: true })
    await writeFile(join(folder, 'pkg', 'onnx', 'model.onnx'), weights)
    const files = [
      {
        path: 'onnx/model.onnx',
        bytes: fileBytes,
        sha256: createHash('sha256').update(weights).digest('hex'),
      },
    ]
    await writeFile(
      join(folder, 'pkg', 'manifest.json'),
      JSON.stringify({ format: 'ondevice-package/1', files }),
    )
    await build({
      root: fileURLToPath(new URL('../../test/client-runtime/browser-store-memory-page/', import.meta.url)),
      logLevel: 'warn',
      configFile: false,
      base: './',
      build: {
        outDir: join(folder, 'page'),
        emptyOutDir: true,
        target: 'es2022',
        reportCompressedSize: false,
      },
    })
    server = await startStaticServer({
      mounts: [
        { prefix: '/pkg/', directory: join(folder, 'pkg') },
        { prefix: '/', directory: join(folder, 'page') },
      ],
    })
    chromium = await launchChromium({ webgpu: false })
    const page = await (await chromium.newContext()).newPage()
    await page.goto(`${server.url}/index.html`)
    await page.waitForFunction(() => 'download' in globalThis)
    const cdp = await chromium.browser.newBrowserCDPSession()
    const renderers = async (): Promise<number[]> => {
      const { processInfo } = (await cdp.send('SystemInfo.getProcessInfo')) as {
        processInfo: { type: string; id: number }[]
      }
      return processInfo.filter((process) => process.type === 'renderer').map((process) => process.id)
    }
    const before = new Map<number, number>()
    for (const pid of await renderers()) before.set(pid, await statusBytes(pid, 'VmRSS'))

    const result = await page.evaluate(
      (source) =>
        (globalThis as unknown as { download: (source: string) => Promise<unknown> }).download(source),
      `${server.url}/pkg/`,
    )
    expect(result).toEqual({ cached: true })

    // The renderer that ran the worker is the one whose peak rose most.
    let rise = 0
    for (const pid of await renderers()) {
      const start = before.get(pid)
      if (start !== undefined) rise = Math.max(rise, (await statusBytes(pid, 'VmHWM')) - start)
    }
    expect(rise).toBeGreaterThan(0)
    expect(rise / MiB, 'MiB the peak rose while downloading and verifying a 384 MiB file').toBeLessThan(
      fileBytes / 2 / MiB,
    )
  })
})
