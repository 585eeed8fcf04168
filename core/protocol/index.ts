// The OpenAI wire format, in one place: the worker writes with it and the SDK reads with it.
// One file a job: types, validate, request (and its parts: messages, sampling, tools,
// response_format), chunk, response, usage, finish reason, errors, models.

export { clip } from './checks.ts'
export { type ChunkReading, type ChunkWriter, createChunkWriter, readChunk } from './chunk.ts'
export { validateConstraint } from './constraint-check.ts'
export { type MessageContent, messageContentText, validateMessageContent } from './content.ts'
export { errorStatus, fromErrorBody, toErrorBody } from './errors.ts'
export { fromFinishReason, toFinishReason } from './finish-reason.ts'
export { formatHeaderNames, validateFormat } from './format.ts'
export { fromWireMessages, toWireMessages } from './messages.ts'
export {
  firstModelId,
  listedMaxTokens,
  type ModelEntry,
  type ModelLimits,
  toModelEntry,
  toModelList,
} from './models.ts'
export {
  type ChatRequestInput,
  encodeChatPrompt,
  toChatCompletionRequest,
  toChatMessages,
  toGenerateRequest,
  toSamplingOptions,
  toStopStrings,
  toTemplateOptions,
} from './request.ts'
export {
  type CompletionHeader,
  toChatCompletionResponse,
  toOndeviceResult,
  toWireToolCalls,
} from './response.ts'
export {
  constraintTemplateTools,
  toConstraintOptions,
  toWireConstraint,
  toWireTools,
  validateResponseFormat,
  wireConstraintFieldNames,
} from './response-format.ts'
export { fromWireSampling, samplingFields, toWireSampling, type WireSampling } from './sampling.ts'
export { templateTools, validateTools } from './tools.ts'
export type {
  ChatCompletionChunk,
  ChatCompletionChunkDelta,
  ChatCompletionContentPart,
  ChatCompletionFinishReason,
  ChatCompletionMessage,
  ChatCompletionRequest,
  ChatCompletionResponse,
  ChatCompletionResponseFormat,
  ChatCompletionTool,
  ChatCompletionToolChoice,
  ChatCompletionUsage,
  ModelListResponse,
  OndeviceContinuation,
  OndeviceFormat,
  OndeviceResult,
  OpenAIErrorBody,
} from './types.ts'
export { fromUsage, toUsage, type UsageReading } from './usage.ts'
export { validateChatCompletionRequest } from './validate.ts'
