// The edge worker's test setup under `wrangler dev` (started by tools/wrangler-dev.ts): a config
// written to a temp folder that serves a bundle of worker/index.ts with local R2 and static
// assets bindings, and local R2 pre-seeded with a package. Each instance pays for loading ORT's
// wasm.
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { basename, join, relative, sep } from 'node:path'
import { bundleWorker, offlineWranglerEnv, repositoryRoot } from '../../tools/wrangler-dev.ts'

export interface WorkerConfigOptions {
  readonly directory: string
  readonly assetsDirectory: string
  readonly vars: Readonly<Record<string, string>>
  /** The entry to bundle, relative to the repository (default the shipped 'worker/index.ts'). */
  readonly entry?: string
}

/**
 * Bundles this repository's worker/index.ts once (`wrangler deploy --dry-run --outdir`, offline)
 * and writes a wrangler.json that serves that bundle with R2 and assets bindings. Serving a
 * finished bundle (`no_bundle`) keeps `wrangler dev` from rebuilding and restarting mid-test when
 * a source file changes, and the two workers of a test share one build.
 */
export async function writeWorkerConfig(options: WorkerConfigOptions): Promise<string> {
  const bundleDirectory = join(options.directory, 'bundle')
  const compatibility = { compatibility_date: '2025-09-01', compatibility_flags: ['enable_request_signal'] }
  const rules = [{ type: 'CompiledWasm', globs: ['**/*.wasm'], fallthrough: true }]
  const buildConfig = join(options.directory, 'build.json')
  await writeFile(
    buildConfig,
    JSON.stringify({
      name: 'ondevice-edge-test',
      main: join(repositoryRoot, options.entry ?? 'worker/index.ts'),
      ...compatibility,
      rules,
    }),
  )
  await bundleWorker({ configPath: buildConfig, outDir: bundleDirectory })
  const path = join(options.directory, 'wrangler.json')
  const config = {
    name: 'ondevice-edge-test',
    // wrangler names the bundle after its entry file.
    main: join(bundleDirectory, `${basename(options.entry ?? 'worker/index.ts', '.ts')}.js`),
    ...compatibility,
    no_bundle: true,
    find_additional_modules: true,
    base_dir: bundleDirectory,
    rules,
    r2_buckets: [{ binding: 'MODEL_BUCKET', bucket_name: 'ondevice-models' }],
    assets: { directory: options.assetsDirectory, binding: 'ASSETS', run_worker_first: true },
    vars: options.vars,
  }
  await writeFile(path, JSON.stringify(config, null, 2))
  return path
}

async function listFiles(root: string, folder = root): Promise<string[]> {
  const files: string[] = []
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const full = join(folder, entry.name)
    if (entry.isDirectory()) files.push(...(await listFiles(root, full)))
    else files.push(relative(root, full).split(sep).join('/'))
  }
  return files
}

/** Puts every file of `packageDir` into local R2 under `prefix`, where `wrangler dev --persist-to stateDir` reads it. */
export async function seedLocalR2(
  configPath: string,
  stateDir: string,
  packageDir: string,
  prefix: string,
): Promise<void> {
  Object.assign(process.env, offlineWranglerEnv)
  const { getPlatformProxy } = await import('wrangler')
  // wrangler dev --persist-to X keeps its state in X/v3; getPlatformProxy takes that folder itself.
  const proxy = await getPlatformProxy<{
    MODEL_BUCKET: { put(key: string, value: Uint8Array): Promise<unknown> }
  }>({
    configPath,
    persist: { path: join(stateDir, 'v3') },
  })
  try {
    for (const file of await listFiles(packageDir)) {
      await proxy.env.MODEL_BUCKET.put(
        `${prefix}${file}`,
        new Uint8Array(await readFile(join(packageDir, file))),
      )
    }
  } finally {
    await proxy.dispose()
  }
}
