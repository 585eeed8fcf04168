// An edge older than tool calls: it takes `tools` and `tool_choice` but enforces neither, so an
// answer that toolChoice required a call of ends without one. Checked on every edge answer (apart
// from edge-versions.ts, whose other rules only an edge's refusal needs, loaded on demand).
import { EdgeError } from '../core/errors.ts'

/**
 * An edge from before tool calls took `tools` and `tool_choice` (it showed the tools to the model
 * through its template) but enforced nothing: a `tool_choice` of 'required' or a named tool then
 * ends without a call, as text. An edge that enforces it ends such an answer with the call, or,
 * cut short, `partial` (ondevice's edges) or 'length' (any server). So a 'stop' without a call,
 * or an ondevice edge's (`ondevice` on its final chunk) 'length' without `partial`, means the
 * constraint was not enforced: the answer fails rather than pass for one that honoured it.
 */
export function toolChoiceNotEnforced(
  url: string,
  answer: {
    readonly toolChoice: unknown
    readonly toolCalls: number
    readonly finishReason: string
    readonly partial: boolean
    readonly fromOndeviceEdge: boolean
  },
): EdgeError | undefined {
  const { toolChoice } = answer
  const forced = toolChoice === 'required' || (typeof toolChoice === 'object' && toolChoice !== null)
  if (!forced || answer.toolCalls > 0 || answer.partial) return undefined
  if (answer.finishReason !== 'stop' && !(answer.finishReason === 'length' && answer.fromOndeviceEdge)) {
    return undefined
  }
  return new EdgeError(
    'unsupported',
    `The edge at ${url} answered without the tool call toolChoice requires (finish reason ${answer.finishReason}): it does not enforce tools, as an ondevice older than tool calls does not. Redeploy the edge from this version of ondevice, or let the device answer this request.`,
    { param: 'toolChoice', isRetryable: false },
  )
}
