// response_format and tools on the wire, to what core's generate() enforces (a ConstraintOptions):
// `{ type: "json_object" }`, `{ type: "json_schema", json_schema: { name, schema, strict } }`,
// `tools` / `tool_choice` / `parallel_tool_calls`. Validation (constraint-check.ts) compiles the
// schemas, so a keyword the grammar cannot enforce is a 400 naming it
// (`response_format.json_schema.schema.properties.x.not`) before anything runs; never silently ignored.

import type { ChatTool } from '../chat-template.ts'
// Types only: the compiler is constraint-check.ts's, so the SDK's edge client, which writes these
// fields, does not bring it to a page (docs/architecture.md, "A page loads up front only what
// chatting needs").
import type {
  ConstraintFieldNames,
  ConstraintOptions,
  ResponseFormat,
  ToolChoice,
  ToolDefinition,
} from '../structured/constraint.ts'
import { fail, type JsonObject, quote, refuseUnknownKeys } from './checks.ts'
import type { ChatCompletionRequest, ChatCompletionTool } from './types.ts'

/**
 * The wire's names for the constraint's fields, in every error core raises about them: while the
 * request is validated and while the answer runs (toGenerateRequest passes them to generate(), and
 * the same names make generate() reuse the constraint validation compiled).
 */
export const wireConstraintFieldNames: ConstraintFieldNames = {
  responseFormat: 'response_format',
  tools: 'tools',
  toolChoice: 'tool_choice',
}

const typeOnly: ReadonlySet<string> = new Set(['type'])
const jsonSchemaFormatKeys: ReadonlySet<string> = new Set(['type', 'json_schema'])
/** OpenAI's json_schema fields (`description` is for the model; `strict` changes nothing here). */
const jsonSchemaKeys: ReadonlySet<string> = new Set(['name', 'description', 'schema', 'strict'])

/** Checks the request's `response_format` shape (absent or null is fine). */
export function validateResponseFormat(responseFormat: unknown): void {
  if (responseFormat === undefined || responseFormat === null) return
  if (typeof responseFormat !== 'object' || Array.isArray(responseFormat)) {
    fail('response_format', 'response_format must be an object like { "type": "json_object" }.')
  }
  const format = responseFormat as JsonObject
  const type = format['type']
  if (type === 'text' || type === 'json_object') {
    // A schema here (where vLLM and Fireworks take one for json_object) was dropped, and the
    // answer was any JSON object, or text.
    const schemaHere = `response_format.type ${JSON.stringify(type)} takes no schema: to have the answer follow one, send { "type": "json_schema", "json_schema": { "name": "...", "schema": { ... } } }.`
    refuseUnknownKeys(
      format,
      typeOnly,
      'response_format',
      `response_format ${JSON.stringify(type)} is { "type": ${JSON.stringify(type)} } alone.`,
      {
        schema: schemaHere,
        json_schema: schemaHere,
      },
    )
    return
  }
  if (type !== 'json_schema') {
    fail(
      'response_format.type',
      `response_format.type ${quote(type)} is not supported; use "text", "json_object" or "json_schema".`,
    )
  }
  const jsonSchema = format['json_schema']
  if (typeof jsonSchema !== 'object' || jsonSchema === null || Array.isArray(jsonSchema)) {
    fail(
      'response_format.json_schema',
      'response_format.json_schema must be { "name": "...", "schema": { ... }, "strict": true }.',
    )
  }
  const inside = (key: string) =>
    `${key} goes in response_format.json_schema.${key}: { "type": "json_schema", "json_schema": { "name": "...", "schema": { ... } } }.`
  refuseUnknownKeys(
    format,
    jsonSchemaFormatKeys,
    'response_format',
    'response_format is { "type": "json_schema", "json_schema": { "name", "schema", "strict" } }.',
    {
      schema: inside('schema'),
      name: inside('name'),
      strict: inside('strict'),
      description: inside('description'),
    },
  )
  refuseUnknownKeys(
    jsonSchema as JsonObject,
    jsonSchemaKeys,
    'response_format.json_schema',
    'json_schema has name, description, schema and strict.',
  )
  const { name, schema, strict, description } = jsonSchema as JsonObject
  if (description !== undefined && description !== null && typeof description !== 'string')
    fail(
      'response_format.json_schema.description',
      'response_format.json_schema.description must be a string.',
    )
  if (name !== undefined && (typeof name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(name))) {
    fail(
      'response_format.json_schema.name',
      'response_format.json_schema.name must be 1-64 letters, digits, "_" or "-".',
    )
  }
  if (schema === undefined)
    fail(
      'response_format.json_schema.schema',
      'response_format.json_schema.schema is required: the JSON Schema the answer must follow.',
    )
  if (strict !== undefined && strict !== null && typeof strict !== 'boolean') {
    fail('response_format.json_schema.strict', 'response_format.json_schema.strict must be true or false.')
  }
}

/**
 * Tools in OpenAI's wire shape (also what the chat template renders with `tojson`: the device
 * builds the same objects, key order included, so both sides' prompts are byte-identical).
 */
export function toWireTools(tools: readonly ToolDefinition[]): ChatCompletionTool[] {
  return tools.map((tool) => ({
    type: 'function' as const,
    function: {
      name: tool.name,
      ...(tool.description === undefined ? {} : { description: tool.description }),
      ...(tool.parameters === undefined
        ? {}
        : { parameters: tool.parameters as Readonly<Record<string, unknown>> }),
    },
  }))
}

/** The tools the chat template shows for a constraint (none with toolChoice 'none', as the edge does). */
export function constraintTemplateTools(constraint: ConstraintOptions | undefined): ChatTool[] | undefined {
  if (constraint?.tools === undefined || constraint.tools.length === 0 || constraint.toolChoice === 'none')
    return undefined
  return toWireTools(constraint.tools) as unknown as ChatTool[]
}

/** ConstraintOptions as the wire's fields (the SDK's request body). */
export function toWireConstraint(constraint: ConstraintOptions | undefined): Partial<ChatCompletionRequest> {
  if (constraint === undefined) return {}
  const format = constraint.responseFormat
  const choice = constraint.toolChoice
  return {
    ...(format === undefined
      ? {}
      : {
          response_format:
            format.type === 'json_schema'
              ? {
                  type: 'json_schema' as const,
                  json_schema: {
                    name: format.name ?? 'response',
                    schema: format.schema,
                    ...(format.strict === undefined ? {} : { strict: format.strict }),
                  },
                }
              : { type: format.type },
        }),
    ...(constraint.tools === undefined || constraint.tools.length === 0
      ? {}
      : { tools: toWireTools(constraint.tools) }),
    ...(choice === undefined
      ? {}
      : {
          tool_choice:
            typeof choice === 'string'
              ? choice
              : { type: 'function' as const, function: { name: choice.name } },
        }),
    ...(constraint.parallelToolCalls === undefined
      ? {}
      : { parallel_tool_calls: constraint.parallelToolCalls }),
  }
}

/** The wire's constraint fields as core's ConstraintOptions (the request is validated). */
export function toConstraintOptions(request: ChatCompletionRequest): ConstraintOptions | undefined {
  const options: { -readonly [K in keyof ConstraintOptions]: ConstraintOptions[K] } = {}
  const format = request.response_format
  if (format !== undefined && format !== null && format.type !== 'text') {
    options.responseFormat =
      format.type === 'json_object'
        ? { type: 'json_object' }
        : ({
            type: 'json_schema',
            schema: format.json_schema.schema,
            ...(format.json_schema.strict === undefined || format.json_schema.strict === null
              ? {}
              : { strict: format.json_schema.strict }),
          } as ResponseFormat)
  }
  const tools = request.tools ?? []
  if (tools.length > 0) {
    options.tools = tools.map(
      (tool): ToolDefinition => ({
        name: tool.function.name,
        ...(tool.function.description === undefined ? {} : { description: tool.function.description }),
        ...(tool.function.parameters === undefined ? {} : { parameters: tool.function.parameters }),
      }),
    )
  }
  const choice = request.tool_choice
  if (choice !== undefined && choice !== null) {
    options.toolChoice = (typeof choice === 'string' ? choice : { name: choice.function?.name }) as ToolChoice
  }
  const parallel = request.parallel_tool_calls
  if (parallel !== undefined && parallel !== null) options.parallelToolCalls = parallel
  return Object.keys(options).length === 0 ? undefined : options
}
