// One summary line per suite, printed when it ends, so docs/reliability.md can quote figures that
// anyone reproduces with `npx vitest run test/reliability` (vitest shows console output).
export function reportFigures(
  suite: string,
  figures: Readonly<Record<string, string | number | boolean>>,
): void {
  const parts = Object.entries(figures).map(([name, value]) => `${name}=${value}`)
  console.log(`[reliability] ${suite}: ${parts.join(' ')}`)
}

/** Fixed seeds: a failure reproduces with the same cases. Override with RELIABILITY_SEED for exploration. */
export function fuzzSeed(fallback: number): number {
  const fromEnv = Number(process.env.RELIABILITY_SEED)
  return Number.isSafeInteger(fromEnv) ? fromEnv : fallback
}

/** Scales case counts and durations (RELIABILITY_SCALE=10 for a longer local run; the soak uses it). */
export function scale(count: number): number {
  const factor = Number(process.env.RELIABILITY_SCALE)
  return Number.isFinite(factor) && factor > 0 ? Math.max(1, Math.round(count * factor)) : count
}
