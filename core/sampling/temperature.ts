// Temperature: how flat the distribution is. Part of the specified arithmetic every path and the
// full-sort reference share, in float64 relative to the largest logit: the top token weighs 1, so
// min-p compares weights directly and nothing overflows. Temperature 0 is greedy (the engine's
// argmax) and never reaches this function.

export function temperatureWeight(logit: number, max: number, temperature: number): number {
  return Math.exp((logit - max) / temperature)
}
