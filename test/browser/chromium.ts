// Launches Debian's Chromium (apt package `chromium`) through playwright-core, headless, with a
// fresh profile (Playwright makes a temporary one per launch and deletes it on close) and nothing
// that talks to the network on its own. Playwright's own browser
// downloads are never used: nothing here downloads anything.
import { existsSync } from 'node:fs'
import { type Browser, type BrowserContext, chromium } from 'playwright-core'

const candidatePaths = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/lib/chromium/chromium']

/** The Chromium binary to drive: $CHROMIUM_PATH, else Debian's. Throws how to install it when absent. */
export function chromiumPath(): string {
  const fromEnvironment = process.env['CHROMIUM_PATH']
  if (fromEnvironment !== undefined && fromEnvironment !== '') {
    if (!existsSync(fromEnvironment)) {
      throw new Error(`CHROMIUM_PATH points at ${fromEnvironment}, which does not exist.`)
    }
    return fromEnvironment
  }
  const found = candidatePaths.find((path) => existsSync(path))
  if (found === undefined) {
    throw new Error(
      'The browser end-to-end tests need Chromium and none was found at ' +
        `${candidatePaths.join(', ')}. Install it with \`sudo apt-get install chromium\` ` +
        '(CI does this in .ci/run) or set CHROMIUM_PATH to a Chromium binary.',
    )
  }
  return found
}

export interface LaunchOptions {
  /**
   * true: WebGPU on (SwiftShader, Chromium's software Vulkan, when there is no GPU).
   * false: the GPU process is off, so the page sees no WebGPU adapter.
   */
  readonly webgpu: boolean
  /** More command-line flags (diagnostic scripts: e.g. V8's `--js-flags=...`). */
  readonly extraArgs?: readonly string[]
}

/** Flags that keep a test browser quiet, offline-capable and reproducible. */
const quietFlags = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-domain-reliability',
  '--disable-breakpad',
  '--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider',
  '--metrics-recording-only',
  // Containers have a small /dev/shm; Chromium then crashes on large pages.
  '--disable-dev-shm-usage',
]

/** Checked in Chromium 156 here: this flag alone gives a SwiftShader WebGPU adapter with no GPU. */
const webgpuFlags = ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader']
const noGpuFlags = ['--disable-gpu']

export interface LaunchedChromium {
  readonly browser: Browser
  /** A fresh persistent-profile-free context (Cache API and storage live as long as it does). */
  newContext(options?: { viewport?: { width: number; height: number } }): Promise<BrowserContext>
  /** Every URL requested by any context made with newContext (pages and their workers), in order. */
  readonly requestedUrls: readonly string[]
  close(): Promise<void>
}

export async function launchChromium(options: LaunchOptions): Promise<LaunchedChromium> {
  const executablePath = chromiumPath()
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [...quietFlags, ...(options.webgpu ? webgpuFlags : noGpuFlags), ...(options.extraArgs ?? [])],
    timeout: 60_000,
  })
  const requestedUrls: string[] = []
  return {
    browser,
    newContext: async (contextOptions) => {
      const context = await browser.newContext({
        viewport: contextOptions?.viewport ?? { width: 1100, height: 800 },
        serviceWorkers: 'block',
      })
      context.on('request', (request) => requestedUrls.push(request.url()))
      return context
    },
    requestedUrls,
    close: async () => {
      await browser.close().catch(() => undefined)
    },
  }
}
