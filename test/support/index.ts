// `ondevice/test`: helpers for testing code built on ondevice without a model. (The repository's
// own helpers that need its devDependencies, such as qwen3-tokenizer.ts, are not part of it.)

export { referenceSample } from './reference-sampler.ts'
export { createTestSession, type TestSession, type TestSessionOptions } from './test-session.ts'
export { type BeforeAppend, isDecodeStep, watchAppends } from './watch-appends.ts'
