// OpenAI's `reasoning_effort` on the wire: request.ts reads it and validate.ts checks it. A file of
// its own so that reading a request (the SDK's edge client does) never imports the validation,
// which compiles constraints with the structured-output compiler.

/**
 * OpenAI's `reasoning_effort`, mapped onto the one switch a thinking model's template has
 * (enable_thinking): the model cannot think a little or a lot, only think or not, so 'none' and
 * 'minimal' turn thinking off and the other levels on. A request that also sets
 * chat_template_kwargs.enable_thinking the other way is a contradiction, refused naming both.
 */
export function thinkingOfEffort(effort: unknown): boolean | undefined {
  if (effort === 'none' || effort === 'minimal') return false
  if (effort === 'low' || effort === 'medium' || effort === 'high' || effort === 'xhigh') return true
  return undefined
}
