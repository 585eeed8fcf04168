// Runs the runtime's backend conformance body (test/conformance/) in this page, on the backend
// the test asks for, over fixture packages the test serves. Results go back to Node as JSON.
import { browserConformanceHarness } from '../../conformance/browser-harness.ts'
import {
  type ConformanceFixture,
  type ConformanceResult,
  conformanceCases,
  conformanceFixtures,
} from '../../conformance/conformance-cases.ts'

export interface PageConformanceOutcome {
  readonly fixture: ConformanceFixture
  readonly name: string
  readonly result?: ConformanceResult
  readonly error?: string
  readonly milliseconds: number
}

async function runConformance(options: {
  backend: 'wasm' | 'webgpu'
  packages: Partial<Record<ConformanceFixture, string>>
}): Promise<PageConformanceOutcome[]> {
  const harness = browserConformanceHarness({ backend: options.backend, packages: options.packages })
  const outcomes: PageConformanceOutcome[] = []
  try {
    for (const fixture of conformanceFixtures) {
      if (options.packages[fixture] === undefined) continue
      for (const testCase of conformanceCases) {
        const startedAt = performance.now()
        try {
          const result = await testCase.run(harness, fixture)
          outcomes.push({ fixture, name: testCase.name, result, milliseconds: performance.now() - startedAt })
        } catch (error) {
          const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
          outcomes.push({
            fixture,
            name: testCase.name,
            error: message,
            milliseconds: performance.now() - startedAt,
          })
        }
      }
    }
  } finally {
    await harness.dispose()
  }
  return outcomes
}

;(window as unknown as { runConformance: typeof runConformance }).runConformance = runConformance
document.body.dataset['ready'] = 'true'
