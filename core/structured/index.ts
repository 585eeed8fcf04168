// Structured output: JSON Schema, free JSON and tool calls enforced token by token in the shared
// core (the same mask on the device and the edge, and across a handoff).
export {
  type ModelToolCallSyntax,
  modelToolCallSyntaxOf,
  type ToolCallSyntax,
  toolCallSyntaxOf,
} from './call-syntax.ts'
export {
  type ConstraintFieldNames,
  type ConstraintOptions,
  ConstraintState,
  type ConstraintTokenizer,
  compileConstraint,
  type OutputConstraint,
  type ResponseFormat,
  type ToolChoice,
  type ToolDefinition,
  validateConstraintForModel,
} from './constraint.ts'
export {
  type CompiledSchema,
  compileJsonObject,
  compileJsonSchema,
  type SchemaNode,
  supportedFormats,
} from './json-schema.ts'
export { loadedStructuredOutput, loadStructuredOutput, type StructuredOutput } from './load.ts'
export {
  applyMask,
  cachedScanBytes,
  Grammar,
  GrammarMatcher,
  prepareConstrainedOutput,
  prepareStrings,
} from './matcher.ts'
export { compilePattern } from './regex.ts'
export { readToolCalls, ToolCallReader, toolCallClose, toolCallId, toolCallOpen } from './tool-calls.ts'
export {
  type TokenByteTable,
  type TokenSource,
  TokenVocabulary,
  tokenByteTableOf,
  vocabularyOf,
} from './vocabulary.ts'
export {
  readXmlToolCalls,
  XmlToolCallReader,
  type XmlToolShape,
} from './xml-tool-calls.ts'
