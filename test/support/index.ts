// `ondevice/test`: helpers for testing code built on ondevice without a model.

export { qwen3Tokenizer, qwen3TokenizerDirectory, qwen3TokenizerFiles } from './qwen3-tokenizer.ts'
export { referenceSample } from './reference-sampler.ts'
export { createTestSession, type TestSession, type TestSessionOptions } from './test-session.ts'
export { type BeforeAppend, isDecodeStep, watchAppends } from './watch-appends.ts'
