// A test page as test/browser/other-browsers.test.ts and test/browser/worker-recovery.test.ts use
// one: built with Vite from the repository's sources, opened in a launched browser (Firefox and
// WebKit through other-browsers.ts, Chromium through Playwright behind the same DrivenBrowser),
// and waited for until its script has set itself up (`document.body.dataset.ready`).
import { fileURLToPath } from 'node:url'
import { build, defaultClientConditions } from 'vite'
import { launchChromium } from './chromium.ts'
import type { DrivenBrowser, DrivenPage } from './other-browsers.ts'

/** Builds the page in `folder` (its index.html, module workers as ES modules) into `outDir`. */
export async function buildTestPage(folder: URL, outDir: string): Promise<void> {
  await build({
    configFile: false,
    root: fileURLToPath(folder),
    base: './',
    logLevel: 'error',
    publicDir: false,
    optimizeDeps: { exclude: ['onnxruntime-web'] },
    resolve: { conditions: ['ondevice-source', ...defaultClientConditions] },
    worker: { format: 'es' },
    build: { outDir, emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
  })
}

/** Loads `url` in `page` and waits (up to 30 s) until its script has set itself up. */
export async function openTestPage(page: DrivenPage, url: string): Promise<void> {
  await page.goto(url)
  await page.evaluate(
    `async () => { for (let i = 0; i < 300 && document.body.dataset.ready !== 'true'; i++) await new Promise((r) => setTimeout(r, 100)); if (document.body.dataset.ready !== 'true') throw new Error('the page did not start') }`,
  )
}

/** Debian's Chromium (chromium.ts, no WebGPU) with one tab, driven as Firefox and WebKit are. */
export async function launchDrivenChromium(): Promise<DrivenBrowser> {
  const chromium = await launchChromium({ webgpu: false })
  try {
    const context = await chromium.newContext()
    const tab = await context.newPage()
    const page: DrivenPage = {
      goto: async (url) => {
        await tab.goto(url)
      },
      // The result comes back as JSON text, as from the other browsers (undefined fields left out).
      evaluate: async <Result>(fn: string, arg?: unknown) =>
        JSON.parse(
          (await tab.evaluate<string>(
            `(async () => JSON.stringify((await (${fn})(${JSON.stringify(arg ?? null)})) ?? null))()`,
          )) ?? 'null',
        ) as Result,
    }
    return {
      name: 'chromium',
      version: `Chromium ${chromium.browser.version()}`,
      page,
      output: () => '',
      close: () => chromium.close(),
    }
  } catch (error) {
    await chromium.close()
    throw error
  }
}
