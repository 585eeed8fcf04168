// Seeded random Qwen3.5 weights and the two fixture shapes (tiny for tests, the real 0.8B shape
// for benchmarks). The values are chosen so activations stay in a sane range through every layer
// (and the zero-centred norms get non-zero weights, so a graph that forgot the "1 +" would fail).

import { parseQwen35Config, type Qwen35Config } from './qwen3-5-config.ts'
import { type Qwen35Tensor, qwen35WeightShapes } from './qwen3-5-reference.ts'
import { zeroPaddingRows } from './random-weights.ts'

/** Deterministic uniform numbers in [0, 1) from a 32-bit seed (mulberry32). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function fill(size: number, random: () => number, low: number, high: number): Float32Array {
  const out = new Float32Array(size)
  for (let i = 0; i < size; i++) out[i] = low + (high - low) * random()
  return out
}

/** Random weights for every tensor the config needs, by HF name. Same seed, same weights. */
export function randomQwen35Weights(config: Qwen35Config, seed = 0): Map<string, Qwen35Tensor> {
  const random = seededRandom(seed * 2654435761 + 1)
  const weights = new Map<string, Qwen35Tensor>()
  for (const [name, shape] of qwen35WeightShapes(config)) {
    const size = shape.reduce((a, b) => a * b, 1)
    let data: Float32Array
    if (name.endsWith('.A_log')) {
      // HF init: A ~ U(0.01, 16), stored as log A. Keep decays mild so state carries over.
      data = Float32Array.from(fill(size, random, 0.5, 4), Math.log)
    } else if (name.endsWith('.dt_bias')) {
      data = fill(size, random, -1, 1)
    } else if (name.endsWith('linear_attn.norm.weight')) {
      data = fill(size, random, 0.8, 1.2) // plain weight around 1
    } else if (name.endsWith('norm.weight')) {
      data = fill(size, random, -0.2, 0.2) // zero-centred: the graph must apply 1 + w
    } else if (name.endsWith('conv1d.weight')) {
      data = fill(size, random, -0.6, 0.6)
    } else if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') {
      // Real checkpoints' embeddings are small (std ~0.02-0.05); logits stay O(1-5).
      data = fill(size, random, -0.15, 0.15)
      zeroPaddingRows(data, shape[1] as number)
    } else {
      // Linear layers [out, in]: uniform with variance 1/in keeps activations O(1).
      const fanIn = shape[shape.length - 1] as number
      const bound = Math.sqrt(3 / fanIn)
      data = fill(size, random, -bound, bound)
    }
    weights.set(name, { shape, data })
  }
  return weights
}

/**
 * The tiny test shape: 4 layers (layer 3 is full attention), V heads (4) > K heads (2), small
 * widths. `vocabSize` is the tokenizer's (the real Qwen3 tokenizer for fixtures, smaller in
 * unit tests).
 */
export function tinyQwen35Config(vocabSize: number, overrides: Record<string, unknown> = {}): Qwen35Config {
  return parseQwen35Config({
    model_type: 'qwen3_5_text',
    vocab_size: vocabSize,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 32,
    linear_num_key_heads: 2,
    linear_num_value_heads: 4,
    linear_key_head_dim: 16,
    linear_value_head_dim: 16,
    linear_conv_kernel_dim: 4,
    rms_norm_eps: 1e-6,
    full_attention_interval: 4,
    max_position_embeddings: 4096,
    tie_word_embeddings: true,
    // rotary width 16 of 32 (8 frequencies): mrope_section [3, 3, 2] exercises the interleaved rows.
    rope_parameters: {
      rope_type: 'default',
      rope_theta: 10_000_000,
      partial_rotary_factor: 0.5,
      mrope_interleaved: true,
      mrope_section: [3, 3, 2],
    },
    ...overrides,
  })
}

/** Qwen3.5-0.8B's text shape (from its published config.json). */
export function qwen35Small08bConfig(): Qwen35Config {
  return parseQwen35Config({
    model_type: 'qwen3_5_text',
    vocab_size: 248_320,
    hidden_size: 1024,
    intermediate_size: 3584,
    num_hidden_layers: 24,
    num_attention_heads: 8,
    num_key_value_heads: 2,
    head_dim: 256,
    linear_num_key_heads: 16,
    linear_num_value_heads: 16,
    linear_key_head_dim: 128,
    linear_value_head_dim: 128,
    linear_conv_kernel_dim: 4,
    rms_norm_eps: 1e-6,
    full_attention_interval: 4,
    max_position_embeddings: 262_144,
    tie_word_embeddings: true,
    eos_token_id: 248_044,
    rope_parameters: {
      rope_type: 'default',
      rope_theta: 10_000_000,
      partial_rotary_factor: 0.25,
      mrope_interleaved: true,
      mrope_section: [11, 11, 10],
    },
  })
}
