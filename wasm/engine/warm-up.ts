// The engine's warm-up: every kernel a model's forward pass calls, run on small but validly shaped
// arguments in scratch memory when a session is created, so the host has optimized them before
// the user's first prompt.
//
// Why: V8 (Chromium, Node, workerd) compiles a WebAssembly function first with its baseline
// compiler (Liftoff) and recompiles it optimized (TurboFan) in the background once it has
// executed about --wasm-tiering-budget bytes of baseline code (13,000,000 in V8 13-15; each check
// at a loop back edge or a return charges the code size it passed, at most a quarter of the
// budget). There is no on-stack replacement for WebAssembly: a call that is running keeps its
// baseline code to the end, so on a first prompt each kernel's first calls (for the language
// model head, a 1-token product over the whole vocabulary, its only call) run at baseline speed.
// A browser page cannot pass V8 flags, and the compilation-hints section that could ask for
// eager optimization is behind an experimental flag, so the engine spends the budget itself: each
// kernel below runs `calls` times on a tiny problem (12-19 ms of CPU in Node, 26 ms in Chromium:
// docs/wasm-engine.md), before the weights load, and the optimizing compiles run in the
// background while they do. Helper threads run the same module (one compiled module shared by
// every thread), so its optimized code serves them too.
//
// Shapes come from the model's config where a kernel's code path depends on them (head sizes, the
// Gated DeltaNet's key / value head dims, the conv kernel), so the warm-up takes the branches the
// model will take. The warm-up never changes a result bit: the kernels are pure functions of
// their arguments, everything they read and write lies in scratch above the arena's top, which is
// zeroed and handed back afterwards (the model's state is allocated later, over zeros, as without
// the warm-up); createEngineSession's `warmUp: false` skips it (tests compare the two). The
// embedding lookup is left out: one call per 64-token chunk, a row copy whose baseline calls cost
// well under a millisecond per prompt.
import type { ModelConfig } from '../../core/model-package.ts'
import { type DotForm, relaxedProduct } from './dot-form.ts'
import type { KernelExports, Kernels, Pointer } from './kernels.ts'
import { attentionScoresStride } from './models/load-context.ts'

/** What a warm-up needs to know about the model: the kernels it will call and their shapes. */
export interface WarmUpShape {
  /** Weight format: picks the product kernels ('q4' | 'q8' | 'fp32' | 'fp16'). */
  readonly dtype: string
  readonly headDim: number
  readonly rotaryDim: number
  /** Qwen3.5's Gated DeltaNet layers (absent: attention-only models). */
  readonly linear?: {
    readonly keyHeadDim: number
    readonly valueHeadDim: number
    readonly convKernel: number
  }
}

/** The warm-up's shape for a model, from its config (the same fields its loader reads). */
export function warmUpShape(config: ModelConfig, dtype: string): WarmUpShape {
  // Clamped to sizes the kernels take, so an odd config cannot make the warm-up itself fail: the
  // loader checks the real shapes and says what is wrong.
  const headDim = clamp(config.headDim, 4, 512)
  const rotaryDim = clamp(2 * Math.floor((headDim * config.partialRotaryFactor) / 2), 2, headDim)
  const linear = config.linearAttention
  const recurrent = linear !== undefined || config.modelType.startsWith('qwen3_5')
  return {
    dtype,
    headDim,
    rotaryDim,
    ...(recurrent
      ? {
          linear: {
            keyHeadDim: clamp(linear?.keyHeadDim ?? 128, 1, 512),
            valueHeadDim: clamp(linear?.valueHeadDim ?? 128, 1, 512),
            convKernel: clamp(linear?.convKernelDim ?? 4, 1, 17),
          },
        }
      : {}),
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, Number.isFinite(value) ? Math.trunc(value) : low))
}

/**
 * One kernel's warm-up: `run` once is one call; `calls` of them spend its baseline budget. Each
 * count is about twice the calls after which V8 13.6 on x64 started the optimizing compile of the
 * kernel (and of the internal functions it calls) for these shapes, counted with
 * --wasm-sync-tier-up and --trace-wasm-compilation-times; ARM64's fixed-size instructions charge
 * the budget faster. Chromium 156 starts the same compiles. Too few calls cost only speed, never a
 * bit of a result.
 */
interface WarmUpStep {
  readonly kernel: keyof KernelExports
  readonly calls: number
  readonly run: () => void
}

/** The products' shape: k inputs (8 blocks of 32), 12 output rows (a tile of 8 and one of 4). */
const productK = 256
const productN = 12
/** Prefill rows: a whole quad of 4 tokens and a partial one (both branches of the panel kernels). */
const prefillRows = 6

/**
 * Runs the warm-up (see the file comment). `dotForms`: the relaxed builds' 4-bit product forms to
 * warm (dot-form.ts; both when the session will measure which to run). Returns the milliseconds
 * it took (the caller may report them; nothing depends on it).
 */
export function warmUpKernels(
  kernels: Kernels,
  shape: WarmUpShape,
  dotForms: readonly DotForm[] = ['pairs'],
): number {
  const started = performance.now()
  const mark = kernels.mark()
  try {
    for (const step of warmUpSteps(kernels, shape, dotForms)) for (let i = 0; i < step.calls; i++) step.run()
  } finally {
    // Zeros again, as fresh memory is: nothing loaded later can see what the warm-up wrote.
    kernels.bytes(mark, kernels.mark() - mark).fill(0)
    kernels.release(mark)
  }
  return performance.now() - started
}

/** The kernels to warm for `shape`, their arguments allocated (and filled) above the arena's top. */
export function warmUpSteps(
  kernels: Kernels,
  shape: WarmUpShape,
  dotForms: readonly DotForm[] = ['pairs'],
): WarmUpStep[] {
  const K = kernels.k
  // Floats filled with a small, varied pattern: zeros could take early exits (an all-zero block's
  // scale) that skip the loops a real call runs.
  const floats = (count: number, base = 0.5): Pointer => {
    const pointer = kernels.alloc(Math.max(1, count) * 4, 16)
    const view = kernels.f32(pointer, count)
    for (let i = 0; i < count; i++) view[i] = base * (((i * 37) % 17) / 8 - 1)
    return pointer
  }
  const positives = (count: number, value: number): Pointer => {
    const pointer = kernels.alloc(Math.max(1, count) * 4, 16)
    kernels.f32(pointer, count).fill(value)
    return pointer
  }
  const bytes = (count: number): Pointer => {
    const pointer = kernels.alloc(Math.max(1, count), 16)
    const view = kernels.bytes(pointer, count)
    for (let i = 0; i < count; i++) view[i] = (i * 73 + 41) & 0xff
    return pointer
  }
  const steps: WarmUpStep[] = []

  // The matrix products: quantize the activations, then the panel GEMM (prefill) and the GEMV
  // (decode, and the language model head on every prompt's last token).
  const blocks = productK / 32
  const x = floats(prefillRows * productK)
  const codes = kernels.alloc(8 * blocks * 64, 16)
  const scales = kernels.alloc(8 * blocks * 4, 16)
  const sums = kernels.alloc(8 * blocks * 4, 16)
  const starts = kernels.alloc(8 * blocks * 4, 16)
  const weights = bytes(productN * blocks * 32)
  const weightScales = positives(productN * blocks, 0.01)
  const zeroPoints = bytes(productN * blocks)
  const y = kernels.alloc(prefillRows * productN * 4, 16)
  const n = productN
  if (shape.dtype === 'q4' && kernels.relaxed) {
    const quantize = K.quantize_rows_q4_relaxed as NonNullable<KernelExports['quantize_rows_q4_relaxed']>
    steps.push({
      kernel: 'quantize_rows_q4_relaxed',
      calls: 160,
      run: () => quantize(x, prefillRows, productK, codes, scales, sums, starts, 0, prefillRows),
    })
    for (const form of dotForms) {
      const panelName = relaxedProduct(true, form)
      const gemvName = relaxedProduct(false, form)
      const panel = K[panelName] as NonNullable<KernelExports[typeof panelName]>
      const gemv = K[gemvName] as NonNullable<KernelExports[typeof gemvName]>
      // The pairs panel takes the start values, the dot-add one the sums (src/gemm-q4-relaxed.c).
      const perToken = form === 'pairs' ? starts : sums
      steps.push(
        {
          kernel: panelName,
          calls: 180,
          run: () =>
            panel(
              weights,
              weightScales,
              zeroPoints,
              n,
              blocks,
              codes,
              scales,
              perToken,
              prefillRows,
              y,
              0,
              n,
            ),
        },
        {
          kernel: gemvName,
          calls: 1500,
          run: () => gemv(weights, weightScales, zeroPoints, n, blocks, codes, scales, sums, 1, y, 0, n),
        },
      )
    }
  } else if (shape.dtype === 'q4')
    steps.push(
      {
        kernel: 'quantize_rows_q4',
        calls: 160,
        run: () => K.quantize_rows_q4(x, prefillRows, productK, codes, scales, sums, 0, prefillRows),
      },
      {
        kernel: 'gemm_panel_q4',
        calls: 180,
        run: () =>
          K.gemm_panel_q4(weights, weightScales, zeroPoints, n, blocks, codes, scales, prefillRows, y, 0, n),
      },
      {
        kernel: 'gemm_q4',
        calls: 1500,
        run: () => K.gemm_q4(weights, weightScales, zeroPoints, n, blocks, codes, scales, sums, 1, y, 0, n),
      },
    )
  else if (shape.dtype === 'q8')
    steps.push(
      {
        kernel: 'quantize_rows_q8',
        calls: 160,
        run: () => K.quantize_rows_q8(x, prefillRows, productK, codes, scales, 0, prefillRows),
      },
      {
        kernel: 'gemm_panel_q8',
        calls: 180,
        run: () => K.gemm_panel_q8(weights, weightScales, n, blocks, codes, scales, prefillRows, y, 0, n),
      },
      {
        kernel: 'gemm_q8',
        calls: 1500,
        run: () => K.gemm_q8(weights, weightScales, n, blocks, codes, scales, 1, y, 0, n),
      },
    )
  else {
    const matrix = floats(n * productK)
    steps.push({
      kernel: 'gemm_f32',
      calls: 300,
      run: () => K.gemm_f32(matrix, n, productK, x, prefillRows, y, 0, n),
    })
  }

  // Norms, residual adds and SwiGLU, on hidden-sized rows.
  const hidden = productK
  const normWeight = floats(hidden)
  const normOut = kernels.alloc(prefillRows * hidden * 4, 16)
  const other = floats(prefillRows * hidden, 0.25)
  steps.push(
    {
      kernel: 'rms_norm',
      calls: 300,
      run: () => K.rms_norm(x, normWeight, normOut, prefillRows, hidden, 1e-6, 0),
    },
    { kernel: 'add_into', calls: 700, run: () => K.add_into(normOut, other, prefillRows * hidden) },
    { kernel: 'silu_mul', calls: 170, run: () => K.silu_mul(normOut, other, 0, prefillRows * hidden) },
  )

  // Attention: two query heads over one key / value head, a few new positions after a few cached
  // ones (several rows: prefill's blocks of rows; one row: decode).
  const { headDim, rotaryDim } = shape
  const heads = 2
  const positions = 16
  const position0 = 8
  const rows = 4
  const width = headDim
  const positionStride = 2 * width
  const cache = floats(positions * positionStride, 0.25)
  const query = floats(rows * heads * headDim)
  const keys = floats(rows * width)
  const inverseFrequencies = positives(rotaryDim / 2, 0.1)
  const scoresStride = attentionScoresStride(positions)
  const scores = kernels.alloc(heads * scoresStride * 4, 16)
  const attended = kernels.alloc(rows * heads * headDim * 4, 16)
  const scale = 1 / Math.sqrt(headDim)
  steps.push(
    {
      kernel: 'rope',
      calls: 170,
      run: () => K.rope(query, rows, heads, headDim, rotaryDim, position0, inverseFrequencies),
    },
    {
      kernel: 'kv_store',
      calls: 1250,
      run: () => K.kv_store(keys, cache, rows, width, positionStride, position0),
    },
    {
      kernel: 'attention_split',
      calls: 520,
      run: () =>
        K.attention_split(
          query,
          cache,
          cache + width * 4,
          attended,
          scores,
          scoresStride,
          rows,
          heads,
          1,
          headDim,
          positionStride,
          position0,
          scale,
          0,
          heads,
        ),
    },
  )

  // Qwen3.5: the gated attention's [query | gate] split and output gate, the causal conv and the
  // gated delta rule (one key head, one value head, the model's head dims).
  if (shape.linear) {
    const { keyHeadDim: dk, valueHeadDim: dv, convKernel } = shape.linear
    const projected = floats(rows * 2 * heads * headDim)
    const gate = kernels.alloc(rows * heads * headDim * 4, 16)
    const channels = 2 * dk + dv
    const tokens = prefillRows
    const mixed = floats(tokens * channels)
    const convState = floats((convKernel - 1) * channels, 0.25)
    const convWeight = floats(convKernel * channels)
    const convolved = kernels.alloc(tokens * channels * 4, 16)
    const z = floats(tokens * dv)
    const a = floats(tokens)
    const b = floats(tokens)
    const negExpALog = positives(1, -0.5)
    const dtBias = positives(1, 0.1)
    const deltaNorm = floats(dv)
    const state = floats(dk * dv, 0.05)
    const core = kernels.alloc(tokens * dv * 4, 16)
    const deltaScratch = kernels.alloc(K.qwen35_gated_delta_scratch_floats(1, dk, dv) * 4, 16)
    steps.push(
      {
        kernel: 'qwen35_split_query_gate',
        calls: 300,
        run: () => K.qwen35_split_query_gate(projected, query, gate, rows, heads, headDim),
      },
      {
        kernel: 'qwen35_sigmoid_gate',
        calls: 120,
        run: () => K.qwen35_sigmoid_gate(attended, gate, rows * heads * headDim),
      },
      {
        kernel: 'qwen35_causal_conv_silu',
        calls: 70,
        run: () =>
          K.qwen35_causal_conv_silu(
            mixed,
            convState,
            convWeight,
            convolved,
            tokens,
            channels,
            convKernel,
            0,
            channels,
          ),
      },
      {
        kernel: 'qwen35_gated_delta',
        calls: 8,
        run: () =>
          K.qwen35_gated_delta(
            convolved,
            channels,
            z,
            dv,
            a,
            b,
            1,
            negExpALog,
            dtBias,
            deltaNorm,
            state,
            core,
            dv,
            deltaScratch,
            tokens,
            1,
            1,
            dk,
            dv,
            1e-6,
            0,
            1,
          ),
      },
    )
  }
  return steps
}
