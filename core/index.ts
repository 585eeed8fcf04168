// `ondevice/core`: the code the device and the edge both run. No platform APIs in here.
export {
  type ChatMessage,
  type ChatRole,
  type ChatTool,
  type ChatToolCall,
  type RenderChatTemplateOptions,
  renderChatTemplate,
  validateChatMessages,
} from './chat-template.ts'
export { type ChatEncoder, type ChatPrompt, encodeChatTurns } from './chat-turns.ts'
export {
  AbortedError,
  BackendError,
  ContextLengthError,
  deserializeError,
  EdgeError,
  type ErrorCode,
  InvalidArgumentError,
  ModelError,
  OndeviceError,
  type OndeviceErrorOptions,
  type SerializedError,
  StoreError,
  serializeError,
  TemplateError,
  TokenizerError,
  toOndeviceError,
} from './errors.ts'
export {
  type Continuation,
  type GenerateRequest,
  type GenerationTokenizer,
  generate,
  generateText,
} from './generate.ts'
export * from './model-package.ts'
export type { ModelSession, ModelSessionInfo, RunOptions } from './model-session.ts'
export {
  type ChatCompletionChunk,
  type ChatCompletionChunkDelta,
  type ChatCompletionContentPart,
  type ChatCompletionFinishReason,
  type ChatCompletionMessage,
  type ChatCompletionRequest,
  type ChatCompletionResponse,
  type ChatCompletionTool,
  type ChatCompletionUsage,
  encodeChatPrompt,
  fromFinishReason,
  fromUsage,
  type ModelListResponse,
  type OndeviceContinuation,
  type OndeviceResult,
  type OpenAIErrorBody,
  toChatMessages,
  toFinishReason,
  toGenerateRequest,
  toSamplingOptions,
  toStopStrings,
  toTemplateOptions,
  toUsage,
  validateChatCompletionRequest,
} from './protocol.ts'
export {
  applyLogitProcessors,
  counterUniform,
  type ResolvedSamplingOptions,
  resolveSamplingOptions,
  Sampler,
  type SamplingOptions,
  samplingOptionNames,
  selectTop,
} from './sampler.ts'
export { StopStringMatcher, type StopStringResult, validateStopStrings } from './stop-strings.ts'
export type {
  ErrorPart,
  FinishPart,
  FinishReason,
  GenerationPart,
  HandoffPart,
  Route,
  RoutePart,
  StreamPart,
  TextDeltaPart,
  Usage,
} from './stream-parts.ts'
export { type DecodingTokenizer, TextStream } from './text-stream.ts'
export {
  type ApplyChatTemplateOptions,
  type DecodeOptions,
  type EncodeOptions,
  Tokenizer,
  type TokenizerFiles,
} from './tokenizer.ts'
