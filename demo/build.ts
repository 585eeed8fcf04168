// Builds the demo page with Vite (used by `npm start` and the browser tests). The output is a
// static folder: index.html, its assets, the model Web Worker's chunk and ORT's runtime files
// (ort/, from the ondevice/vite plugin). The model package is not copied in: the static server
// mounts it beside it.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'
import type { StaticMount } from './static-server.ts'

export const demoDirectory = fileURLToPath(new URL('.', import.meta.url))
export const defaultDemoOutDirectory = fileURLToPath(new URL('./dist/', import.meta.url))
/** onnxruntime-web's dist folder (the browser conformance page serves it; the demo's build carries its own copy of the files it needs). */
export const ortDistDirectory = fileURLToPath(
  new URL('../node_modules/onnxruntime-web/dist/', import.meta.url),
)

export interface BuildDemoOptions {
  /** Where the built page goes (default demo/dist). Tests build into a temporary folder. */
  readonly outDir?: string
}

/** Builds the page and returns the folder it went to. */
export async function buildDemo(options: BuildDemoOptions = {}): Promise<string> {
  const outDir = options.outDir ?? defaultDemoOutDirectory
  await build({
    configFile: fileURLToPath(new URL('./vite.config.ts', import.meta.url)),
    // Errors only: the bundler's notes on ORT's size and plugin timings say nothing a user must act on.
    logLevel: 'error',
    build: { outDir, emptyOutDir: true },
  })
  return outDir
}

/** Where the page finds the model package (demo-config.json's `model`). */
export const demoModelPath = '/models/default/'

/**
 * What the static server serves for the demo: the page (revalidated), its content-hashed assets
 * (cached for good, so the page and the SDK's model worker start offline once loaded), ORT's
 * dist files, and the model package (never HTTP-cached: the SDK's store keeps it).
 */
export function demoMounts(outDir: string, packageDirectory: string): StaticMount[] {
  return [
    { prefix: '/', directory: outDir, cacheControl: 'no-cache' },
    {
      prefix: '/assets/',
      directory: join(outDir, 'assets'),
      cacheControl: 'public, max-age=31536000, immutable',
    },
    // ORT's runtime files are in the build (the ondevice/vite plugin wrote them to ort/).
    { prefix: '/ort/', directory: join(outDir, 'ort'), cacheControl: 'public, max-age=86400' },
    { prefix: demoModelPath, directory: packageDirectory },
  ]
}
