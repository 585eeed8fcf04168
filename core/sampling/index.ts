// Sampling: options, the logits processors, the candidate filters and the selection engine.
export { type CandidateFilter, type Candidates, narrowCandidates } from './candidates.ts'
export { counterUniform } from './counter-uniform.ts'
export { drawCandidate } from './draw.ts'
export { LogitBiasProcessor } from './logit-bias.ts'
export { applyLogitsProcessors, type LogitsContext, type LogitsProcessor } from './logits-processor.ts'
export { MinPFilter } from './min-p.ts'
export {
  maxTemperature,
  type ResolvedSamplingOptions,
  resolveSamplingOptions,
  type SamplingOptions,
  samplingOptionNames,
} from './options.ts'
export { type Penalties, PenaltiesProcessor, penaltiesOff } from './penalties.ts'
export {
  createCandidateFilters,
  createLogitsProcessors,
  Sampler,
  type SamplerSetup,
} from './sampler.ts'
export { temperatureWeight } from './temperature.ts'
export { selectTop, TopKFilter } from './top-k.ts'
export { TopPFilter } from './top-p.ts'
