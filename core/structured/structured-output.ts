// What a constrained answer runs, in one module that bundlers emit as a chunk of its own
// (`structured-output-*.js`): the compiler from JSON Schema and tools to a token mask, the
// per-generation state, and the readers of tool calls. Most pages never send `responseFormat` or
// `tools`, so the SDK and the generation loop import it only when a request needs it
// (loadStructuredOutput in load.ts); nothing outside core/structured imports this file.
export { ConstraintState, compileConstraint, validateConstraintForModel } from './constraint.ts'
export { readToolCalls, ToolCallReader, toolCallId } from './tool-calls.ts'
export { readXmlToolCalls, toolCallSyntaxOf, XmlToolCallReader } from './xml-tool-calls.ts'
