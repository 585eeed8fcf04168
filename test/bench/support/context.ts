// What every benchmark group gets from the runner, and what it gives back.
import type { Table } from './stats.ts'

export interface BenchContext {
  readonly cacheFolder: string
  /** Fewer repetitions and tokens: a smoke run of the script itself. */
  readonly quick: boolean
  readonly log: (line: string) => void
  /** Reuse built packages even when the builder changed since (faster; the JSON says so). */
  readonly keepPackages: boolean
  /** When set, only these packages run (ids as in support/packages.ts). */
  readonly packages: ReadonlySet<string> | undefined
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
