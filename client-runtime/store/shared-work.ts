// One piece of work per key at a time (a file's download, a file's hash check), joined by every
// concurrent caller. Each caller may leave through its own AbortSignal: it is answered at once with
// AbortedError, and the work goes on for the callers still waiting. The work itself is aborted
// only when its last caller has left, and that caller is answered once the work has settled, so
// nothing (a writer of a `.partial` file) is still running when the last caller hears back.
import { AbortedError } from '../../core/errors.ts'

interface Work<Progress> {
  readonly done: Promise<void>
  readonly controller: AbortController
  /** The progress callbacks of the callers still waiting. */
  readonly listeners: Set<(progress: Progress) => void>
  waiting: number
}

/** Work in flight per key, shared by every store in this context. */
const inFlight = new Map<string, Work<never>>()
/** Work whose callers all left, while it stops: new work on its key starts after it. */
const stopping = new Map<string, Promise<void>>()

export interface JoinOptions<Progress> {
  /** This caller leaves when it aborts; the work stops only when every caller has left. */
  readonly signal?: AbortSignal | undefined
  /** Progress the work reports while this caller waits on it. */
  readonly onProgress?: ((progress: Progress) => void) | undefined
}

/**
 * Runs `work` under `key` unless it is already running, and waits for it. `work` gets a signal that
 * aborts once no caller waits any more, and a `report` that reaches every waiting caller.
 */
export function shared<Progress = never>(
  key: string,
  work: (signal: AbortSignal, report: (progress: Progress) => void) => Promise<void>,
  options: JoinOptions<Progress> = {},
): Promise<void> {
  const { signal, onProgress } = options
  if (signal?.aborted) return Promise.reject(new AbortedError(undefined, { cause: signal.reason }))
  let running = inFlight.get(key) as Work<Progress> | undefined
  if (!running) {
    const controller = new AbortController()
    const listeners = new Set<(progress: Progress) => void>()
    const report = (progress: Progress): void => {
      for (const listener of listeners) listener(progress)
    }
    // A stopping predecessor may still hold the key's files (a writer closing its `.partial`).
    const done = (stopping.get(key) ?? Promise.resolve())
      .then(() => work(controller.signal, report))
      .finally(() => {
        if (inFlight.get(key) === (started as Work<never>)) inFlight.delete(key)
      })
    // Every caller may have left before the work fails: its rejection is then nobody's to handle.
    done.catch(() => undefined)
    const started: Work<Progress> = { done, controller, listeners, waiting: 0 }
    inFlight.set(key, started as Work<never>)
    running = started
  }
  const joined = running
  joined.waiting++
  const listener = onProgress ? (progress: Progress) => onProgress(progress) : undefined
  if (listener) joined.listeners.add(listener)
  return new Promise<void>((resolve, reject) => {
    let left = false
    const leave = (): boolean => {
      if (left) return false
      left = true
      signal?.removeEventListener('abort', onAbort)
      if (listener) joined.listeners.delete(listener)
      joined.waiting--
      return true
    }
    const onAbort = (): void => {
      if (!leave()) return
      const aborted = new AbortedError(undefined, { cause: signal?.reason })
      if (joined.waiting > 0) {
        reject(aborted)
        return
      }
      // The last caller left: stop the work, and answer once it has stopped. A caller that comes
      // meanwhile gets new work, started after this one has stopped.
      joined.controller.abort(signal?.reason)
      if (inFlight.get(key) === (joined as Work<never>)) inFlight.delete(key)
      const stopped = joined.done.catch(() => undefined)
      stopping.set(key, stopped)
      void stopped.then(() => {
        if (stopping.get(key) === stopped) stopping.delete(key)
      })
      joined.done.then(
        () => reject(aborted),
        () => reject(aborted),
      )
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    joined.done.then(
      () => {
        if (leave()) resolve()
      },
      (error: unknown) => {
        if (leave()) reject(error)
      },
    )
  })
}
