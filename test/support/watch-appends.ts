// Wraps a ModelSession so a test can watch, slow down or fail each append (what the generation
// loop feeds the session), on a real ORT session or on the test session alike.
import type { ModelSession, RunOptions } from '../../core/model-session.ts'

/** Runs before each append; throwing fails that append as a backend would. */
export type BeforeAppend = (
  tokenIds: readonly number[],
  options: RunOptions | undefined,
) => void | Promise<void>

export function watchAppends(
  session: ModelSession,
  beforeAppend: BeforeAppend,
  hooks: { readonly onReset?: () => void } = {},
): ModelSession {
  return {
    get info() {
      return session.info
    },
    get tokens() {
      return session.tokens
    },
    async append(tokenIds, options) {
      await beforeAppend(tokenIds, options)
      return session.append(tokenIds, options)
    },
    rewind: (length) => session.rewind(length),
    async reset() {
      hooks.onReset?.()
      await session.reset()
    },
    dispose: () => session.dispose(),
  }
}

/** Whether an append feeds one decode step: prompt chunks keep a checkpoint, decode steps don't. */
export function isDecodeStep(tokenIds: readonly number[], options: RunOptions | undefined): boolean {
  return !(options?.checkpoint ?? tokenIds.length > 1)
}
