// The chat log: one element per message. Each assistant message carries its state in data-*
// attributes (route, backend, state, token ids) so a person inspecting the page, and the browser
// tests, read the same facts the badge shows.
import { formatMilliseconds, formatRate, routeLabel } from './format.ts'

export interface AnswerFigures {
  readonly route: string
  readonly backend: string | undefined
  readonly reason: string
  readonly timeToFirstTokenMs: number | undefined
  readonly decodeTokensPerSecond: number | undefined
  readonly completionTokens: number | undefined
  readonly handoff: string | undefined
}

export class AnswerView {
  readonly element: HTMLElement
  private readonly bubble: HTMLElement
  /** A thinking model's reasoning (its `<think>` block), shown apart above the answer, folded once it answers. */
  private readonly thinking: HTMLDetailsElement
  private readonly thinkingText: HTMLElement
  private readonly badge: HTMLElement
  private readonly figures: HTMLElement
  private readonly reason: HTMLElement
  private text = ''

  constructor(container: HTMLElement) {
    this.element = element('article', 'message assistant')
    this.element.dataset['state'] = 'waiting'
    this.bubble = element('div', 'bubble')
    this.thinking = element('details', 'thinking') as HTMLDetailsElement
    this.thinking.hidden = true
    const summary = element('summary', '')
    summary.textContent = 'Thinking'
    this.thinkingText = element('div', 'thinking-text')
    this.thinking.append(summary, this.thinkingText)
    const meta = element('div', 'meta')
    this.badge = element('span', 'badge')
    this.badge.textContent = 'routing…'
    this.figures = element('span', 'figures')
    meta.append(this.badge, this.figures)
    this.reason = element('p', 'reason')
    this.element.append(this.thinking, this.bubble, meta, this.reason)
    container.append(this.element)
  }

  /** Where it runs, as soon as the SDK says (before the first token). */
  showRoute(route: string, backend: string | undefined, reason: string): void {
    this.element.dataset['route'] = route
    if (backend !== undefined) this.element.dataset['backend'] = backend
    this.badge.dataset['route'] = route
    this.badge.textContent = routeLabel(route, backend)
    this.reason.textContent = reason
  }

  append(delta: string): void {
    this.element.dataset['state'] = 'streaming'
    // The answer has started: the reasoning folds away (it stays one click from view).
    this.thinking.open = false
    this.text += delta
    this.bubble.textContent = this.text
  }

  appendReasoning(delta: string): void {
    this.element.dataset['state'] = 'streaming'
    if (this.thinking.hidden) {
      this.thinking.hidden = false
      this.thinking.open = true
    }
    this.thinkingText.textContent += delta
  }

  showHandoff(reason: string, completedTokens: number): void {
    this.element.dataset['handoff'] = String(completedTokens)
    this.showRoute(
      'device+edge',
      this.element.dataset['backend'],
      `Handed off after ${completedTokens} tokens: ${reason}`,
    )
  }

  finish(figures: AnswerFigures, tokenIds: readonly number[], finishReason: string): void {
    this.showRoute(
      figures.route,
      figures.backend,
      figures.handoff === undefined ? figures.reason : `${figures.handoff} (${figures.reason})`,
    )
    const parts: string[] = []
    if (figures.timeToFirstTokenMs !== undefined) {
      parts.push(`first token ${formatMilliseconds(figures.timeToFirstTokenMs)}`)
    }
    if (figures.decodeTokensPerSecond !== undefined) {
      parts.push(`${formatRate(figures.decodeTokensPerSecond)} tok/s`)
    }
    if (figures.completionTokens !== undefined) parts.push(`${figures.completionTokens} tokens`)
    this.figures.textContent = parts.join(' · ')
    this.element.dataset['tokenIds'] = tokenIds.join(',')
    this.element.dataset['finishReason'] = finishReason
    if (figures.timeToFirstTokenMs !== undefined) {
      this.element.dataset['timeToFirstTokenMs'] = String(Math.round(figures.timeToFirstTokenMs))
    }
    if (figures.decodeTokensPerSecond !== undefined) {
      this.element.dataset['tokensPerSecond'] = figures.decodeTokensPerSecond.toFixed(1)
    }
    this.element.dataset['state'] = 'done'
  }

  /** A structured answer: shown indented, marked as JSON (the page's JSON mode). */
  showJson(text: string): void {
    try {
      this.bubble.textContent = JSON.stringify(JSON.parse(text), null, 2)
      this.bubble.classList.add('json')
      this.element.dataset['json'] = 'valid'
    } catch {
      this.element.dataset['json'] = 'invalid'
    }
  }

  fail(message: string): void {
    this.element.dataset['state'] = 'error'
    this.badge.textContent = 'failed'
    this.reason.textContent = message
    if (this.text === '') this.bubble.textContent = '—'
  }

  get answer(): string {
    return this.text
  }
}

export function appendUserMessage(container: HTMLElement, text: string): void {
  const message = element('article', 'message user')
  const bubble = element('div', 'bubble')
  bubble.textContent = text
  message.append(bubble)
  container.append(message)
}

function element(tag: string, className: string): HTMLElement {
  const node = document.createElement(tag)
  node.className = className
  return node
}
