// Tools (function calling): their shape's validation, and what the chat template gets from them.
// The model sees the tools through its own template; response-format.ts turns them into the
// constraint generate() enforces (calls valid against each tool's parameters).
import type { ChatTool } from '../chat-template.ts'
import { fail, type JsonObject, refuseUnknownKeys } from './checks.ts'
import type { ChatCompletionRequest } from './types.ts'

/** OpenAI's rule for function names: what a template prints as a name is never markup. */
const toolName = /^[A-Za-z0-9_-]{1,64}$/

const toolKeys: ReadonlySet<string> = new Set(['type', 'function'])
/** OpenAI's function fields (`strict` changes nothing here: every schema is enforced). */
const functionKeys: ReadonlySet<string> = new Set(['name', 'description', 'parameters', 'strict'])
/** Names other APIs give a function's argument schema (Anthropic's, MCP's) and common slips. */
const parameterAliases = [
  'input_schema',
  'inputSchema',
  'schema',
  'params',
  'paramaters',
  'arguments',
  'args',
]

/** Checks the request's `tools` (absent or null is fine). */
export function validateTools(tools: unknown): void {
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools))
      fail('tools', 'tools must be an array of { type: "function", function: { name, parameters } }.')
    tools.forEach((tool: unknown, index) => {
      const function_ =
        typeof tool === 'object' && tool !== null ? (tool as JsonObject)['function'] : undefined
      if (
        (tool as JsonObject | null)?.['type'] !== 'function' ||
        typeof function_ !== 'object' ||
        function_ === null
      ) {
        fail(`tools.${index}`, `tools.${index} must be { type: "function", function: { name, parameters } }.`)
      }
      // A misplaced or misspelt key took the tool's schema with it: the calls were not checked.
      const misplaced = `belongs in tools.${index}.function: { type: "function", function: { name, description, parameters } }.`
      refuseUnknownKeys(
        tool as JsonObject,
        toolKeys,
        `tools.${index}`,
        'a tool is { type: "function", function: { name, description, parameters } }.',
        Object.fromEntries(
          ['name', 'description', 'parameters', 'strict'].map((key) => [key, `${key} ${misplaced}`]),
        ),
      )
      refuseUnknownKeys(
        function_ as JsonObject,
        functionKeys,
        `tools.${index}.function`,
        'a function has name, description, parameters and strict.',
        Object.fromEntries(
          parameterAliases.map((key) => [
            key,
            `the JSON Schema of the function's arguments goes in tools.${index}.function.parameters (a function has name, description, parameters and strict).`,
          ]),
        ),
      )
      const strict = (function_ as JsonObject)['strict']
      if (strict !== undefined && strict !== null && typeof strict !== 'boolean')
        fail(`tools.${index}.function.strict`, `tools.${index}.function.strict must be true or false.`)
      const name = (function_ as JsonObject)['name']
      if (typeof name !== 'string' || !toolName.test(name))
        fail(
          `tools.${index}.function.name`,
          `tools.${index}.function.name must be 1 to 64 letters, digits, underscores or dashes (got ${JSON.stringify(name)?.slice(0, 80)}).`,
        )
      const description = (function_ as JsonObject)['description']
      if (description !== undefined && description !== null && typeof description !== 'string')
        fail(`tools.${index}.function.description`, `tools.${index}.function.description must be a string.`)
    })
  }
}

/** The tools the template renders: none when tool_choice is 'none'. */
export function templateTools(request: ChatCompletionRequest): readonly ChatTool[] | undefined {
  const tools = request.tool_choice === 'none' ? undefined : request.tools
  return tools !== undefined && tools.length > 0 ? (tools as unknown as readonly ChatTool[]) : undefined
}
