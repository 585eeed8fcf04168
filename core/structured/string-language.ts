// The language of one string schema (its pattern, its format and its length bounds) as the one
// automaton the string grammar walks, or the reason it is empty.
//
// The grammar only keeps a string going while some completion exists: it checks the characters
// so far plus the automaton state's distance to acceptance against maxLength. That check is exact
// for one automaton, but a pattern and a format are two (each one's distance says nothing of
// their intersection), and minLength asks for a completion at least so long, which a distance
// (the shortest) does not see: `^a{1,2}$` with minLength 3 let the model write "aa" and then
// left no token. So when there is more than one automaton, or minLength is above the shortest
// string the pattern matches, they are intersected here into one explicit automaton whose states
// also count characters up to minLength (acceptance needs minLength of them), with exact
// distances and the dead states removed. Its emptiness is then decided before anything runs.
import { InvalidArgumentError } from '../errors.ts'
import {
  type Automaton,
  AutomatonState,
  type CodePointAutomaton,
  type CompileBudget,
  compileBudget,
  constraintIntersectionStates,
  constraintIntersectionWork,
} from './regex.ts'

/** One automaton a string must satisfy, with where it came from (for errors). */
export interface StringConstraint {
  readonly automaton: CodePointAutomaton
  /** The request field: `...pattern` or `...format`. */
  readonly param: string
  /** How a message names it: `the pattern "^a+$"`, `the format "date"`. */
  readonly label: string
}

export type StringLanguage =
  | { readonly empty: false; readonly automaton: Automaton | undefined }
  | { readonly empty: true; readonly param: string; readonly message: string }

/** More intersection states than this: refused (a pattern that explodes when intersected). */
const maxIntersectionStates = 50_000

/**
 * The language of a string with these constraints and length bounds (in code points; maxLength
 * may be Infinity). `path` is the string schema's request field.
 */
export function stringLanguage(
  constraints: readonly StringConstraint[],
  minLength: number,
  maxLength: number,
  path: string,
  budget: CompileBudget = compileBudget(),
): StringLanguage {
  if (maxLength < minLength) {
    return {
      empty: true,
      param: `${path}.maxLength`,
      message: `maxLength (${maxLength}) is below minLength (${minLength}): no string fits.`,
    }
  }
  if (constraints.length === 0) return { empty: false, automaton: undefined }
  const first = constraints[0]!
  const automaton =
    constraints.length === 1 && minLength <= first.automaton.start.distance
      ? first.automaton
      : intersection(constraints, minLength, path, budget)
  if (!Number.isFinite(automaton.start.distance)) {
    const names = describe(constraints)
    const unbounded = constraints.length === 1 ? first.automaton : intersection(constraints, 0, path, budget)
    if (Number.isFinite(unbounded.start.distance)) {
      return {
        empty: true,
        param: `${path}.minLength`,
        message: `No string matches ${names} and minLength ${minLength}: every string ${constraints.length === 1 ? 'it matches' : 'they both match'} is shorter than ${minLength} characters.`,
      }
    }
    // Two constraints are a pattern and a format (one alone always matches some string).
    const pattern = constraints.find((each) => each.param.endsWith('.pattern')) ?? first
    return {
      empty: true,
      param: pattern.param,
      message: `No string matches both ${names}${datesNote(constraints)}.`,
    }
  }
  if (automaton.start.distance > maxLength) {
    const names = describe(constraints)
    return {
      empty: true,
      param: `${path}.maxLength`,
      message: `Every string that matches ${constraints.length === 1 ? names : `both ${names}`}${minLength > 0 ? ` with at least ${minLength} characters` : ''} has at least ${automaton.start.distance} characters, more than maxLength (${maxLength}).`,
    }
  }
  return { empty: false, automaton }
}

function describe(constraints: readonly StringConstraint[]): string {
  // An allOf may hold hundreds of patterns: name a few, count the rest.
  if (constraints.length > 4)
    return `${constraints
      .slice(0, 3)
      .map((each) => each.label)
      .join(' and ')} and ${constraints.length - 3} other patterns and formats`
  return constraints.map((each) => each.label).join(' and ')
}

function datesNote(constraints: readonly StringConstraint[]): string {
  return constraints.some((each) => each.label.includes('"date'))
    ? ' (the date formats stop February at the 28th: no leap-year arithmetic)'
    : ''
}

// Intersections are deterministic in their inputs (state keys included), so one built for the same
// sources and minLength serves every schema that has them; the recent ones are kept, up to a
// number of states in all (a Worker isolate has 128 MB).
const intersections = new Map<string, IntersectionAutomaton>()
const maxCachedStates = 100_000
let cachedStates = 0

function intersection(
  constraints: readonly StringConstraint[],
  minLength: number,
  path: string,
  budget: CompileBudget,
): IntersectionAutomaton {
  const source = `${constraints.map((each) => each.automaton.source).join('\u0000')}\u0000#${minLength}`
  let automaton = intersections.get(source)
  if (automaton === undefined) {
    const param = constraints.length > 1 ? constraints[0]!.param : `${path}.minLength`
    const limit = Math.min(maxIntersectionStates, budget.intersectionStates)
    automaton = new IntersectionAutomaton(
      source,
      constraints.map((each) => each.automaton),
      minLength,
      limit,
      budget.intersectionWork,
      (what) => {
        throw new InvalidArgumentError(
          param,
          what === 'work'
            ? `Checking that the schema's strings can always be completed takes too much work (patterns and formats checked together, over ${constraintIntersectionWork.toLocaleString('en')} steps in all; the limit was reached at ${describe(constraints)}): use fewer patterns on one string, simplify them, or lower minLength.`
            : limit < maxIntersectionStates
              ? `Checking that the schema's strings can always be completed takes automata of more than ${constraintIntersectionStates} states in all (patterns and formats with minLength, checked together; the limit was reached at ${describe(constraints)}): simplify the patterns, lower minLength, or use fewer such strings.`
              : `Checking that ${describe(constraints)}${minLength > 0 ? ` with minLength ${minLength}` : ''} can always be completed takes an automaton of more than ${maxIntersectionStates} states, too large: simplify the pattern${minLength > 0 ? ' or lower minLength' : ''}.`,
        )
      },
    )
    budget.intersectionStates -= automaton.size
    budget.intersectionWork -= automaton.work
    intersections.set(source, automaton)
    cachedStates += automaton.size
    while (cachedStates > maxCachedStates && intersections.size > 1) {
      const oldest = intersections.keys().next().value as string
      cachedStates -= intersections.get(oldest)!.size
      intersections.delete(oldest)
    }
  }
  return automaton
}

class IntersectionState extends AutomatonState {
  /** Sorted, disjoint [low, high, target] transitions, to live states only. */
  readonly edges: [number, number, IntersectionState][] = []
}

/**
 * The product of several pattern automata and a character counter saturating at minLength,
 * built completely (breadth-first from the start), then pruned of the states that cannot reach
 * acceptance, with exact distances.
 */
class IntersectionAutomaton implements Automaton {
  readonly source: string
  readonly start: IntersectionState
  /** How many states were built (before pruning). */
  readonly size: number
  /** The steps building it took: per state, its parts' boundaries and a step per part per run. */
  readonly work: number
  constructor(
    source: string,
    parts: readonly CodePointAutomaton[],
    minLength: number,
    maxStates: number,
    maxWork: number,
    tooLarge: (what: 'states' | 'work') => never,
  ) {
    this.source = source
    interface Draft {
      readonly key: string
      readonly parts: readonly AutomatonState[]
      readonly count: number
      readonly accepting: boolean
      readonly edges: [number, number, number][]
    }
    const drafts: Draft[] = []
    const index = new Map<string, number>()
    const draftOf = (states: readonly AutomatonState[], count: number): number => {
      const key = `${states.map((state) => state.key).join('&')}#${count}`
      let at = index.get(key)
      if (at === undefined) {
        if (drafts.length >= maxStates) tooLarge('states')
        at = drafts.length
        drafts.push({
          key,
          parts: states,
          count,
          accepting: count >= minLength && states.every((state) => state.accepting),
          edges: [],
        })
        index.set(key, at)
      }
      return at
    }
    // The count only matters while it could still be short: once minLength - count is no more
    // than the fewest characters some part needs anyway, every completion is long enough.
    const counted = (states: readonly AutomatonState[], count: number): number => {
      let needed = 0
      for (const state of states) needed = Math.max(needed, state.distance)
      return minLength - count <= needed ? minLength : count
    }
    const starts = parts.map((part) => part.start)
    draftOf(starts, counted(starts, 0))
    let work = 0
    for (let at = 0; at < drafts.length; at++) {
      const draft = drafts[at]!
      // Between two consecutive boundaries every part moves alike: one representative each.
      const points = new Set<number>()
      for (const state of draft.parts)
        for (const point of state.automaton.boundaries(state)) points.add(point)
      const sorted = [...points].sort((a, b) => a - b)
      work += points.size + sorted.length * draft.parts.length
      if (work > maxWork) tooLarge('work')
      for (let position = 0; position + 1 < sorted.length; position++) {
        const low = sorted[position]!
        const high = sorted[position + 1]! - 1
        const next: AutomatonState[] = []
        for (const state of draft.parts) {
          const after = state.automaton.next(state, low)
          if (after === undefined) break
          next.push(after)
        }
        if (next.length < draft.parts.length) continue
        const target = draftOf(next, counted(next, Math.min(draft.count + 1, minLength)))
        const last = draft.edges[draft.edges.length - 1]
        if (last !== undefined && last[2] === target && last[1] + 1 === low) last[1] = high
        else draft.edges.push([low, high, target])
      }
    }
    // Distances to acceptance, breadth-first backwards (every edge is one character).
    const reverse: number[][] = drafts.map(() => [])
    drafts.forEach((draft, from) => {
      for (const [, , target] of draft.edges) reverse[target]!.push(from)
    })
    const distance = new Array<number>(drafts.length).fill(Number.POSITIVE_INFINITY)
    const queue: number[] = []
    drafts.forEach((draft, at) => {
      if (draft.accepting) {
        distance[at] = 0
        queue.push(at)
      }
    })
    for (let head = 0; head < queue.length; head++) {
      const at = queue[head]!
      for (const from of reverse[at]!) {
        if (distance[from] === Number.POSITIVE_INFINITY) {
          distance[from] = distance[at]! + 1
          queue.push(from)
        }
      }
    }
    const states = drafts.map(
      (draft, at) => new IntersectionState(this, draft.key, [], draft.accepting, distance[at]!),
    )
    drafts.forEach((draft, at) => {
      for (const [low, high, target] of draft.edges)
        if (Number.isFinite(distance[target]!)) states[at]!.edges.push([low, high, states[target]!])
    })
    this.start = states[0]!
    this.size = states.length
    this.work = work
  }

  next(from: AutomatonState, codePoint: number): AutomatonState | undefined {
    const edges = (from as IntersectionState).edges
    let low = 0
    let high = edges.length - 1
    while (low <= high) {
      const middle = (low + high) >> 1
      const edge = edges[middle]!
      if (codePoint < edge[0]) high = middle - 1
      else if (codePoint > edge[1]) low = middle + 1
      else return edge[2]
    }
    return undefined
  }

  cheapest(from: AutomatonState, low: number, high: number): number {
    let cheapest = Number.POSITIVE_INFINITY
    for (const [edgeLow, edgeHigh, target] of (from as IntersectionState).edges)
      if (edgeLow <= high && edgeHigh >= low) cheapest = Math.min(cheapest, target.distance)
    return cheapest
  }

  boundaries(from: AutomatonState): number[] {
    const points: number[] = []
    for (const [low, high] of (from as IntersectionState).edges) points.push(low, high + 1)
    return points
  }
}
