// Driving the demo page the way a person does (type, press Enter, read the answer and its
// badge), reading back the facts the page puts on each answer's data-* attributes.
import type { BrowserContext, Page } from 'playwright-core'

export interface DemoAnswer {
  readonly text: string
  readonly state: string
  readonly route: string | undefined
  readonly backend: string | undefined
  /** The reason line under the badge. */
  readonly reason: string
  /** The badge text, e.g. "device · WASM". */
  readonly badge: string
  readonly tokenIds: readonly number[]
  readonly finishReason: string | undefined
  /** Tokens produced on the device before a handoff, when there was one. */
  readonly handoffAfter: number | undefined
  readonly timeToFirstTokenMs: number | undefined
  readonly tokensPerSecond: number | undefined
  /** Every distinct text the bubble showed while streaming (more than one = it streamed). */
  readonly snapshots: number
}

/** Query parameters the page reads (see demo/src/settings.ts). */
export type DemoQuery = Readonly<Record<string, string | number | boolean>>

export interface OpenedDemo {
  readonly page: Page
  /** Console lines and page errors, for a useful failure message. */
  readonly log: string[]
}

export async function openDemo(
  context: BrowserContext,
  url: string,
  query: DemoQuery = {},
): Promise<OpenedDemo> {
  const page = await context.newPage()
  const log: string[] = []
  page.on('console', (message) => log.push(`[${message.type()}] ${message.text()}`))
  page.on('pageerror', (error) => log.push(`[pageerror] ${error.message}`))
  await gotoDemo(page, url, query)
  return { page, log }
}

export async function gotoDemo(page: Page, url: string, query: DemoQuery = {}): Promise<void> {
  const search = new URLSearchParams(Object.entries(query).map(([key, value]) => [key, String(value)]))
  const target = search.size === 0 ? url : `${url}?${search}`
  await page.goto(target)
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 })
}

/** Sends a prompt and waits until its answer is done (or failed); returns what the page shows. */
export async function ask(
  page: Page,
  prompt: string,
  options: { timeoutMs?: number; whileStreaming?: (page: Page) => Promise<void> } = {},
): Promise<DemoAnswer> {
  const before = await page.locator('.message.assistant').count()
  await page.fill('#prompt', prompt)
  // Count the distinct texts the bubble shows while it streams (a MutationObserver in the page).
  await page.evaluate((index) => {
    const state = { texts: new Set<string>() }
    ;(window as unknown as { __snapshots: typeof state }).__snapshots = state
    const observer = new MutationObserver(() => {
      const answer = document.querySelectorAll('.message.assistant')[index]
      const text = answer?.querySelector('.bubble')?.textContent ?? ''
      if (text !== '') state.texts.add(text)
    })
    observer.observe(document.getElementById('chat') as Node, {
      subtree: true,
      childList: true,
      characterData: true,
    })
  }, before)
  await page.press('#prompt', 'Enter')
  const answer = page.locator('.message.assistant').nth(before)
  if (options.whileStreaming !== undefined) await options.whileStreaming(page)
  await answer.and(page.locator('[data-state="done"], [data-state="error"]')).waitFor({
    timeout: options.timeoutMs ?? 60_000,
  })
  const facts = await answer.evaluate((element: HTMLElement) => ({
    text: element.querySelector('.bubble')?.textContent ?? '',
    state: element.dataset['state'] ?? '',
    route: element.dataset['route'],
    backend: element.dataset['backend'],
    reason: element.querySelector('.reason')?.textContent ?? '',
    badge: element.querySelector('.badge')?.textContent ?? '',
    tokenIds: element.dataset['tokenIds'] ?? '',
    finishReason: element.dataset['finishReason'],
    handoff: element.dataset['handoff'],
    timeToFirstTokenMs: element.dataset['timeToFirstTokenMs'],
    tokensPerSecond: element.dataset['tokensPerSecond'],
  }))
  const snapshots = await page.evaluate(
    () => (window as unknown as { __snapshots: { texts: Set<string> } }).__snapshots.texts.size,
  )
  return {
    text: facts.text,
    state: facts.state,
    route: facts.route,
    backend: facts.backend,
    reason: facts.reason,
    badge: facts.badge,
    tokenIds: facts.tokenIds === '' ? [] : facts.tokenIds.split(',').map(Number),
    finishReason: facts.finishReason,
    handoffAfter: facts.handoff === undefined ? undefined : Number(facts.handoff),
    timeToFirstTokenMs: facts.timeToFirstTokenMs === undefined ? undefined : Number(facts.timeToFirstTokenMs),
    tokensPerSecond: facts.tokensPerSecond === undefined ? undefined : Number(facts.tokensPerSecond),
    snapshots,
  }
}

/** A readable failure: what the answer was plus the page's console. */
export function describeFailure(answer: DemoAnswer, log: readonly string[]): string {
  return `answer: ${JSON.stringify(answer)}\npage console:\n${log.slice(-40).join('\n')}`
}
