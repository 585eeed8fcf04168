// Which numbers the grammar may write for a `number` schema, exactly. The grammar writes decimals
// with at most 15 integer and 15 fraction digits: multiples of 10^-15 ("units") below 10^15 in
// magnitude. A validator compares the parsed double (`Number(text)`) with each bound, and parsing
// is monotonic, so the units that pass both bounds form one interval, found here by bisection.
// Comparing doubles instead (as intervals of reals) promised values that have no such decimal
// (`minimum: 1e-20, maximum: 2e-20`) and walked the matcher into a state no token could leave.
import type { NumberNode } from './json-schema.ts'

const digits = 15
const unitsPerOne = 10n ** BigInt(digits)
/** The largest magnitude the grammar writes, in units: 15 nines, a dot, 15 nines. */
export const largestUnits = 10n ** BigInt(2 * digits) - 1n

/** `units` × 10^-15 as decimal text (what the grammar would write for it). */
export function unitsText(units: bigint): string {
  const negative = units < 0n
  const magnitude = negative ? -units : units
  const whole = magnitude / unitsPerOne
  const fraction = (magnitude % unitsPerOne).toString().padStart(digits, '0').replace(/0+$/, '')
  return `${negative ? '-' : ''}${whole}${fraction === '' ? '' : `.${fraction}`}`
}

/** The smallest units in [low, high] where `passes` holds, `passes` being false then true. */
function firstPassing(low: bigint, high: bigint, passes: (units: bigint) => boolean): bigint | undefined {
  if (!passes(high)) return undefined
  if (passes(low)) return low
  // passes(low) is false and passes(high) true.
  while (high - low > 1n) {
    const middle = (low + high) / 2n
    if (passes(middle)) high = middle
    else low = middle
  }
  return high
}

const ranges = new WeakMap<NumberNode, readonly [bigint, bigint] | null>()

/**
 * The signed units [low, high] whose decimals satisfy the node's bounds as a validator checks them,
 * or undefined when no decimal the grammar can write does.
 */
export function allowedUnits(node: NumberNode): readonly [bigint, bigint] | undefined {
  const cached = ranges.get(node)
  if (cached !== undefined) return cached ?? undefined
  const aboveMinimum = (units: bigint): boolean => {
    const value = Number(unitsText(units))
    return node.exclusiveMinimum ? value > node.minimum : value >= node.minimum
  }
  const belowMaximum = (units: bigint): boolean => {
    const value = Number(unitsText(units))
    return node.exclusiveMaximum ? value < node.maximum : value <= node.maximum
  }
  const low = firstPassing(-largestUnits, largestUnits, aboveMinimum)
  // The last units below the maximum: the first that fails it, minus one.
  const firstAbove = firstPassing(-largestUnits, largestUnits, (units) => !belowMaximum(units))
  const high = firstAbove === undefined ? largestUnits : firstAbove - 1n
  const range = low === undefined || low > high ? undefined : ([low, high] as const)
  ranges.set(node, range ?? null)
  return range
}
