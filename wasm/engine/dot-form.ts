// Which formulation of the relaxed-SIMD 4-bit products a host runs (src/gemm-q4-relaxed.c): the
// pairs form (i16x8.relaxed_dot_i8x16_i7x16_s, int16 adds, widened per block) or the dot-add form
// (i32x4.relaxed_dot_i8x16_i7x16_add_s into int32 lanes). Both give the same bytes on every host,
// so the choice is about speed only, and the speed depends on how the host's V8 lowers the dots:
// dot-add is one instruction on arm64 with DOTPROD (sdot) and on x64 with AVX-VNNI (vpdpbusd),
// three on other x64 (pmaddubsw, pmaddwd, paddd), where the pairs form wins. WebAssembly cannot
// ask which CPU it runs on, so the engine measures: both forms on a small prefill-shaped and
// decode-shaped problem, a few rounds, the faster of each (by its best round) for every later
// call. The helper threads run whatever kernel a pass names (thread-pool.ts's job record), so they
// follow the same choice. Host-neutral (no platform types).
import { InvalidArgumentError } from '../../core/errors.ts'
import type { FourBitProduct, Kernels, Pointer } from './kernels.ts'

/** 'pairs': gemm_q4_relaxed / gemm_panel_q4_relaxed; 'dot-add': their *_dot_add twins. */
export type DotForm = 'pairs' | 'dot-add'
/** What a caller may ask for: one form, or 'auto' (measure; the default). */
export type DotFormRequest = DotForm | 'auto'
export const dotFormRequests: readonly DotFormRequest[] = ['auto', 'pairs', 'dot-add']

/** The forms a relaxed-SIMD engine runs, and how they were chosen. */
export interface DotForms {
  /** The prefill product (gemm_panel_q4_relaxed or gemm_panel_q4_relaxed_dot_add). */
  readonly prefill: DotForm
  /** The decode product (gemm_q4_relaxed or gemm_q4_relaxed_dot_add). */
  readonly decode: DotForm
  /** 'measured' by the probe, or 'requested' (the engine option or ONDEVICE_ENGINE_DOT). */
  readonly chosenBy: 'measured' | 'requested'
  /**
   * True when an earlier session's probe on the same compiled module chose (no probe ran for this
   * one; `probe` is that earlier probe's figures). Absent when this session's probe measured.
   */
  readonly remembered?: true
  /** The probe's best round per form and problem, in microseconds ('measured' only). */
  readonly probe?: {
    readonly prefill: Readonly<Record<DotForm, number>>
    readonly decode: Readonly<Record<DotForm, number>>
    /** What the whole probe took (allocation and data included). */
    readonly milliseconds: number
  }
}

/**
 * A dot-form request, validated: `value` when given (the engine option), else the
 * ONDEVICE_ENGINE_DOT environment variable where the host has one (Node; a browser has none),
 * else 'auto'.
 */
export function dotFormRequest(value?: unknown): DotFormRequest {
  if (value !== undefined) {
    if (!dotFormRequests.includes(value as DotFormRequest))
      throw new InvalidArgumentError(
        'dot',
        `dot must be 'auto', 'pairs' or 'dot-add' (or left out for 'auto'), got ${JSON.stringify(value)}.`,
      )
    return value as DotFormRequest
  }
  const environment = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env
  const variable = environment?.ONDEVICE_ENGINE_DOT
  if (variable === undefined || variable === '') return 'auto'
  if (!dotFormRequests.includes(variable as DotFormRequest))
    throw new InvalidArgumentError(
      'ONDEVICE_ENGINE_DOT',
      `ONDEVICE_ENGINE_DOT must be 'auto', 'pairs' or 'dot-add' (or unset for 'auto'), got ${JSON.stringify(variable)}.`,
    )
  return variable as DotFormRequest
}

/** The forms to warm up for a request: both when the probe will pick one. */
export function dotFormsToWarm(request: DotFormRequest): readonly DotForm[] {
  return request === 'auto' ? ['pairs', 'dot-add'] : [request]
}

/** The kernel a 4-bit product of this form runs (relaxed-SIMD builds). */
export function relaxedProduct(panel: boolean, form: DotForm) {
  if (panel) return form === 'dot-add' ? 'gemm_panel_q4_relaxed_dot_add' : 'gemm_panel_q4_relaxed'
  return form === 'dot-add' ? 'gemm_q4_relaxed_dot_add' : 'gemm_q4_relaxed'
}

/**
 * The probe's choice per compiled module. Which form is faster is a property of the host's V8
 * and CPU, the same for every instance of a module, so one probe per module (per page or worker
 * in a browser, per process in Node, where the module is compiled once) serves every later
 * session: a server's further slots, `createSession` of the same model. Keyed weakly, so a module
 * nobody holds is not kept for its choice.
 */
const measuredForms = new WeakMap<WebAssembly.Module, DotForms>()
let probes = 0

/** How many probes ran in this process or page (tests count them: a later session reuses the first). */
export function dotFormProbesRun(): number {
  return probes
}

/**
 * The forms for `kernels` (a relaxed-SIMD build): `request` itself, or for 'auto' the probe's
 * choice, measured once per compiled module (kernels.module) and remembered. Sets kernels.dot
 * and returns it.
 */
export function chooseDotForms(kernels: Kernels, request: DotFormRequest): DotForms {
  if (!kernels.relaxed) throw new Error('the dot forms exist only in the relaxed-SIMD builds')
  kernels.dot =
    request === 'auto'
      ? measuredDotForms(kernels)
      : { prefill: request, decode: request, chosenBy: 'requested' }
  return kernels.dot
}

function measuredDotForms(kernels: Kernels): DotForms {
  const known = measuredForms.get(kernels.module)
  if (known) return { ...known, remembered: true }
  const forms = probeDotForms(kernels)
  measuredForms.set(kernels.module, forms)
  return forms
}

// The probe's problems: the prefill product over a 16-token pass (four quads) and eight rows
// groups (32 rows: four tiles of two groups), the decode product over 256 rows, both at k = 1024
// (one panel chunk of 32 blocks). Small enough that a call takes ~10-60 µs and the weights stay in
// L1/L2 (the comparison is of the arithmetic, not of memory), large enough that one call is
// hundreds of inner-loop iterations.
const probeK = 1024
const prefillTokens = 16
const prefillRows = 32
const decodeRows = 256
/**
 * Calls per timed sample: a sample is then ~0.1-0.3 ms here, well above the clock's resolution
 * even where a browser coarsens performance.now() (Chromium: 100 µs with jitter on a page that is
 * not cross-origin isolated, 5 µs on one that is). Where the clock does not move during a
 * computation at all (Cloudflare Workers' timers), every round ties and the pairs form runs.
 */
const prefillCalls = 12
const decodeCalls = 24
/** Rounds, each timing both forms (in alternating order); the best round of each counts. */
const rounds = 4

/**
 * Times both forms of both products and returns the faster of each (kernels.dot is not set).
 * Scratch lies above the arena's top, is zeroed and handed back, as in the warm-up. Ties go to
 * the pairs form (the one measured for longest).
 */
export function probeDotForms(kernels: Kernels): DotForms {
  probes++
  const started = performance.now()
  const K = kernels.k
  const quantize = K.quantize_rows_q4_relaxed
  const pairsPanel = K.gemm_panel_q4_relaxed
  const dotAddPanel = K.gemm_panel_q4_relaxed_dot_add
  const pairsGemv = K.gemm_q4_relaxed
  const dotAddGemv = K.gemm_q4_relaxed_dot_add
  if (!quantize || !pairsPanel || !dotAddPanel || !pairsGemv || !dotAddGemv)
    throw new Error('this engine module has no dot-add kernels: rebuild it with `npm run build:engine`')
  const mark = kernels.mark()
  try {
    const blocks = probeK / 32
    const rows = Math.max(prefillRows, decodeRows)
    // Varied data (the arithmetic's cost does not depend on it, but an all-zero block could take a
    // shortcut a real one does not): a short pseudo-random pattern, repeated by copyWithin, since a
    // loop over every byte in not yet optimized JavaScript would cost more than the timing itself.
    const pattern = (view: Uint8Array | Float32Array, make: (i: number) => number) => {
      const period = Math.min(view.length, 1021)
      for (let i = 0; i < period; i++) view[i] = make(i)
      for (let filled = period; filled < view.length; filled *= 2) view.copyWithin(filled, 0, filled)
    }
    const weights = kernels.alloc((rows / 4) * blocks * 64)
    pattern(kernels.bytes(weights, (rows / 4) * blocks * 64), (i) => (i * 167 + 13) & 0xff)
    const weightScales = kernels.alloc(rows * blocks * 4)
    kernels.f32(weightScales, rows * blocks).fill(0.01)
    const zeroPoints = kernels.alloc(rows * blocks)
    pattern(kernels.bytes(zeroPoints, rows * blocks), (i) => (i * 7 + 3) & 0x0f)
    const x = kernels.alloc(prefillTokens * probeK * 4)
    pattern(kernels.f32(x, prefillTokens * probeK), (i) => ((i * 37) % 101) / 50 - 1)
    const codes = kernels.alloc(prefillTokens * blocks * 32)
    const scales = kernels.alloc(prefillTokens * blocks * 4)
    const sums = kernels.alloc(prefillTokens * blocks * 4)
    const starts = kernels.alloc(prefillTokens * blocks * 4)
    const oneCodes = kernels.alloc(blocks * 32)
    const oneScales = kernels.alloc(blocks * 4)
    const oneSums = kernels.alloc(blocks * 4)
    const oneStarts = kernels.alloc(blocks * 4)
    const y = kernels.alloc(prefillTokens * decodeRows * 4)
    quantize(x, prefillTokens, probeK, codes, scales, sums, starts, 0, prefillTokens)
    quantize(x, 1, probeK, oneCodes, oneScales, oneSums, oneStarts, 0, 1)
    const matrix = (n: number) => [weights, weightScales, zeroPoints, n, blocks] as const
    const panel = (kernel: FourBitProduct, perToken: Pointer) => () => {
      for (let i = 0; i < prefillCalls; i++)
        kernel(...matrix(prefillRows), codes, scales, perToken, prefillTokens, y, 0, prefillRows)
    }
    const gemv = (kernel: FourBitProduct) => () => {
      for (let i = 0; i < decodeCalls; i++)
        kernel(...matrix(decodeRows), oneCodes, oneScales, oneSums, 1, y, 0, decodeRows)
    }
    const prefill = best({ pairs: panel(pairsPanel, starts), 'dot-add': panel(dotAddPanel, sums) })
    const decode = best({ pairs: gemv(pairsGemv), 'dot-add': gemv(dotAddGemv) })
    const faster = (times: Record<DotForm, number>): DotForm =>
      times['dot-add'] < times.pairs ? 'dot-add' : 'pairs'
    return {
      prefill: faster(prefill),
      decode: faster(decode),
      chosenBy: 'measured',
      probe: { prefill, decode, milliseconds: performance.now() - started },
    }
  } finally {
    kernels.bytes(mark, kernels.mark() - mark).fill(0)
    kernels.release(mark)
  }
}

/** Each form's best round, in microseconds; the two alternate which runs first. */
function best(runs: Record<DotForm, () => void>): Record<DotForm, number> {
  const times: Record<DotForm, number> = {
    pairs: Number.POSITIVE_INFINITY,
    'dot-add': Number.POSITIVE_INFINITY,
  }
  for (let round = 0; round < rounds; round++) {
    const order: readonly DotForm[] = round % 2 === 0 ? ['pairs', 'dot-add'] : ['dot-add', 'pairs']
    for (const form of order) {
      const started = performance.now()
      runs[form]()
      times[form] = Math.min(times[form], (performance.now() - started) * 1000)
    }
  }
  return times
}
