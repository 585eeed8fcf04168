// Which build of the engine a host runs: the relaxed-SIMD modules (engine-relaxed.wasm,
// engine-threads-relaxed.wasm: the 4-bit products on the relaxed dot products, see
// src/gemm-q4-relaxed.c) where the host validates relaxed SIMD (Node 22+, Chromium 114+), the
// plain SIMD128 modules elsewhere (Safari, Firefox without the flag). Both give the same bits:
// the relaxed kernels use the dot product only where every host computes the same integer.
// Host-neutral (no platform types).

/** 'relaxed': engine-relaxed.wasm / engine-threads-relaxed.wasm; 'plain': engine.wasm / engine-threads.wasm. */
export type EngineSimd = 'relaxed' | 'plain'

/**
 * The smallest module that uses relaxed SIMD: one function (v128, v128, v128) -> v128 whose body
 * is i32x4.relaxed_dot_i8x16_i7x16_add_s (0xfd 0x113). WebAssembly.validate accepts it exactly
 * where the host implements the proposal.
 */
const relaxedSimdProbe = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00, // magic, version
  0x01,
  0x08,
  0x01,
  0x60,
  0x03,
  0x7b,
  0x7b,
  0x7b,
  0x01,
  0x7b, // type: (v128 v128 v128) -> v128
  0x03,
  0x02,
  0x01,
  0x00, // function 0 of type 0
  0x0a,
  0x0d,
  0x01,
  0x0b,
  0x00,
  0x20,
  0x00,
  0x20,
  0x01,
  0x20,
  0x02,
  0xfd,
  0x93,
  0x02,
  0x0b, // code
])

let validated: boolean | undefined

/** Whether this host's WebAssembly has relaxed SIMD (checked once). */
export function hostHasRelaxedSimd(): boolean {
  validated ??= WebAssembly.validate(relaxedSimdProbe)
  return validated
}

/**
 * The build to run: `requested` when given ('relaxed' on a host without it is an error the caller
 * reports), else relaxed where the host validates it.
 */
export function chooseEngineSimd(requested?: EngineSimd): EngineSimd {
  if (requested !== undefined) return requested
  return hostHasRelaxedSimd() ? 'relaxed' : 'plain'
}
