// What every benchmark group gets from the runner, and what it gives back.
import type { Table } from './stats.ts'

/** Where a group that runs on several hosts runs (group 7: Node and headless Chromium). */
export const benchHosts = ['node', 'chromium'] as const
export type BenchHost = (typeof benchHosts)[number]

export interface BenchContext {
  readonly cacheFolder: string
  /** Fewer repetitions and tokens: a smoke run of the script itself. */
  readonly quick: boolean
  readonly log: (line: string) => void
  /** Reuse built packages even when the builder changed since (faster; the JSON says so). */
  readonly keepPackages: boolean
  /** When set, only these packages run (ids as in support/packages.ts). */
  readonly packages: ReadonlySet<string> | undefined
  /** When set, only these hosts (`--hosts`); groups on one host ignore it. */
  readonly hosts?: ReadonlySet<BenchHost> | undefined
  /** Results of groups that already ran in this process (group 2 reads group 1's decode rates). */
  readonly results: Map<number, GroupResult>
}

export interface GroupResult {
  readonly group: number
  readonly title: string
  readonly tables: readonly Table[]
  /** Raw figures for the JSON file. */
  readonly data: unknown
}
