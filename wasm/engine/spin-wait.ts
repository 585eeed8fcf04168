// Spinning on the thread pool's control block before sleeping in Atomics.wait, where it pays.
//
// A decode step runs some two hundred passes a few microseconds apart, and waking a thread that
// sleeps costs tens of microseconds each time: on Qwen3.5-0.8B q4 with two threads in Node on a
// quiet 2-core machine, spinning up to 0.2 ms took a decode step from 29.6-32.5 ms to 24.0-24.7 ms
// (docs/wasm-engine.md, Threads, has the figures with other processes busy).
// On a busy machine the same spinning is a loss: a spinning thread holds a core that the thread it
// waits for needs (with one other busy process: 41-51 ms → 75-85 ms), and most spins then run out
// (75-89 % against 3-4 % on the quiet machine). So each thread backs off on its own: a spin that
// runs out makes it sleep at once for the next 1, 3, 7 ... up to 255 waits, and one that sees the
// change halves that. Quiet, only the wait across a gap (between tokens) runs out, and the next
// spin succeeds; busy, the thread soon spins on one wait in hundreds.

/** How long one spin lasts before the thread sleeps. */
export const spinMs = 0.2
/** The most waits a thread sleeps through without spinning after spins that ran out. */
const maxBackoff = 255

export class SpinWait {
  readonly #now: () => number
  #backoff = 0
  #skip = 0

  /** `now`: the clock in milliseconds (a test passes its own). */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now
  }

  /**
   * Spins until words[index] is no longer `value` (true), or returns false at once or after
   * spinMs: the caller then sleeps in Atomics.wait (or, where it may not block, keeps polling).
   */
  spin(words: Int32Array, index: number, value: number): boolean {
    if (this.#skip > 0) {
      this.#skip--
      return Atomics.load(words, index) !== value
    }
    const until = this.#now() + spinMs
    for (let spins = 1; ; spins++) {
      if (Atomics.load(words, index) !== value) {
        this.#backoff >>= 1
        return true
      }
      // The clock is read every 64 loads: each read costs as much as dozens of them.
      if ((spins & 63) === 0 && this.#now() > until) {
        this.#backoff = Math.min(2 * this.#backoff + 1, maxBackoff)
        this.#skip = this.#backoff
        return false
      }
    }
  }
}
