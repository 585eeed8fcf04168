// The request's tool_choice, parallel_tool_calls and constraint checked on the server: the
// constraint compiled (core's structured-output compiler) so a keyword the grammar cannot enforce
// is a 400 naming it at its wire path before anything runs. Apart from response-format.ts, which
// the SDK's edge client uses too: a static import of the compiler on a page's path puts it up front.
import { InvalidArgumentError } from '../errors.ts'
import type { ModelToolCallSyntax } from '../structured/call-syntax.ts'
import { compileConstraint, validateConstraintForModel } from '../structured/constraint.ts'
import { fail, type JsonObject } from './checks.ts'
import { toConstraintOptions, wireConstraintFieldNames } from './response-format.ts'
import type { ChatCompletionRequest } from './types.ts'

/**
 * Compiles the request's constraint once to check it (the grammar is cached and reused when the
 * request runs), reporting errors at their wire paths. `syntax`: the call syntax of the model that
 * answers (modelToolCallSyntaxOf), once the server knows it; without it, what every model takes.
 */
export function validateConstraint(request: ChatCompletionRequest, syntax?: ModelToolCallSyntax): void {
  const choice = request['tool_choice'] as unknown
  if (typeof choice === 'string' && choice !== 'none' && choice !== 'auto' && choice !== 'required') {
    fail(
      'tool_choice',
      `tool_choice ${JSON.stringify(choice.slice(0, 64))} is not one of "none", "auto", "required"; to force one tool send { "type": "function", "function": { "name": "..." } }.`,
    )
  }
  if (choice !== undefined && choice !== null && typeof choice !== 'string') {
    const named = choice as JsonObject
    const fn = named['function'] as JsonObject | undefined
    if (
      named['type'] !== 'function' ||
      typeof fn !== 'object' ||
      fn === null ||
      typeof fn['name'] !== 'string'
    ) {
      fail(
        'tool_choice',
        'tool_choice must be "none", "auto", "required" or { "type": "function", "function": { "name": "..." } }.',
      )
    }
  }
  const parallel = request['parallel_tool_calls'] as unknown
  if (parallel !== undefined && parallel !== null && typeof parallel !== 'boolean')
    fail('parallel_tool_calls', 'parallel_tool_calls must be true or false.')
  const options = toConstraintOptions(request)
  if (options === undefined) return
  try {
    if (syntax === undefined) compileConstraint(options, wireConstraintFieldNames)
    else validateConstraintForModel(options, syntax, wireConstraintFieldNames)
  } catch (error) {
    if (!(error instanceof InvalidArgumentError) || error.param === undefined) throw error
    throw new InvalidArgumentError(toWirePath(error.param), toWireMessage(error.message))
  }
}

/** The paths a message of core's quotes, in the wire's terms (as `param` is). */
function toWireMessage(message: string): string {
  return message
    .replaceAll('response_format.schema', 'response_format.json_schema.schema')
    .replace(/\btools\.(\d+)\.(?!function\.)/g, 'tools.$1.function.')
}

/** Core's field paths to the wire's: the schema sits under json_schema, a tool's fields under function. */
function toWirePath(param: string): string {
  return param
    .replace(/^response_format\.schema/, 'response_format.json_schema.schema')
    .replace(/^response_format\.(strict|name|description)$/, 'response_format.json_schema.$1')
    .replace(/^tools\.(\d+)\./, 'tools.$1.function.')
    .replace(/^tool_choice\.name$/, 'tool_choice.function.name')
}
