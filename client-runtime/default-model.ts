// The embedded default model (Node): a tiny seeded Qwen3.5-architecture package with the real
// Qwen3 tokenizer, written deterministically by the builder on first use into the cache folder.
// It exercises the whole stack offline; its weights are random, so its text is not meaningful.
// q8 for WASM and q4 for native: each backend gets the format it runs fastest (52 MB in all).
import { rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { writeQwen35Fixture } from '../builder/architectures/qwen3-5-fixture.ts'
import { defaultCacheDir } from './store/node-store.ts'

/** Bump when the fixture's contents change, so old caches are not reused. */
const defaultModelName = 'qwen3_5-tiny-seed1-v2'

export const defaultModelDescription =
  'the embedded default model (a tiny Qwen3.5-architecture package with random weights and the real Qwen3 tokenizer): its text is not meaningful'

let building: Promise<string> | undefined

/** Returns the default package's folder, building it first if it is not in the cache yet. */
export function defaultModelPackage(options: { cacheDir?: string } = {}): Promise<string> {
  const folder = join(options.cacheDir ?? defaultCacheDir(), 'default', defaultModelName)
  building ??= (async () => {
    if (
      await stat(join(folder, 'manifest.json')).then(
        () => true,
        () => false,
      )
    )
      return folder
    // Build beside the final folder and rename, so a crash never leaves a half-written package
    // where the next run would find it.
    const temporary = `${folder}.tmp-${process.pid}`
    await rm(temporary, { recursive: true, force: true })
    try {
      await writeQwen35Fixture({ outDir: temporary, seed: 1, size: 'tiny', dtypes: ['q8', 'q4'] })
      await rename(temporary, folder).catch(async (error: unknown) => {
        // Another process finished first: use its copy.
        if (
          await stat(join(folder, 'manifest.json')).then(
            () => true,
            () => false,
          )
        )
          return
        throw error
      })
    } finally {
      await rm(temporary, { recursive: true, force: true })
    }
    return folder
  })().finally(() => {
    building = undefined
  })
  return building
}
