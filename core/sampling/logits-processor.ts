// The first half of a draw: processors that change the logits vector in place, one after the
// other, before the selection engine turns what is left into a token. Order matters and is fixed
// by the Sampler: constraints (token masks, e.g. a grammar) → logit bias → penalties.
//
// A processor's output may depend only on the logits and on the context below: the tokens before
// this draw and the step. That keeps a draw a pure function of (logits, history, seed, step), so
// another machine that replays the same tokens resumes with the same state (device → edge handoff).

/** What a processor may look at besides the logits. */
export interface LogitsContext {
  /** Every token before this draw: the prompt, then the generated ones. */
  readonly previousTokenIds: readonly number[]
  /** Where the generated tokens start in `previousTokenIds`. */
  readonly promptLength: number
  /** The draw counter (0 for the first generated token of an answer, continued across a handoff). */
  readonly step: number
}

export interface LogitsProcessor {
  /**
   * Changes `logits` in place for this draw. Set a token to -Infinity to rule it out; leave NaN
   * alone (the engine never picks it). Throws the project's errors for bad input.
   */
  process(logits: Float32Array, context: LogitsContext): void
}

/** Runs processors in order over the same vector. */
export function applyLogitsProcessors(
  processors: readonly LogitsProcessor[],
  logits: Float32Array,
  context: LogitsContext,
): void {
  for (const processor of processors) processor.process(logits, context)
}
