// What the relaxed builds' dot-form probe (wasm/engine/dot-form.ts) costs and what it picks on
// this host: a fresh relaxed-SIMD instance, the warm-up of a Qwen3.5-0.8B-shaped q4 model with both
// forms (as createEngineSession does when the probe will run), a pause for the optimizing compiles
// to land (the session's weight load stands in for it), then the probe several times. Prints each
// probe's choice, its best rounds and its cost in this thread's CPU time and in wall time. The
// first probe also pays for compiling the probe's own JavaScript. A diagnostic script, not part
// of `npm run bench`:
//   npx node test/bench/profile-engine-dot-probe.ts [--probes 5] [--pause 300]
import { parseModelConfig } from '../../core/model-package.ts'
import { probeDotForms } from '../../wasm/engine/dot-form.ts'
import { Kernels } from '../../wasm/engine/kernels.ts'
import { loadEngineModule } from '../../wasm/engine/node.ts'
import { warmUpKernels, warmUpShape } from '../../wasm/engine/warm-up.ts'

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`)
  return index < 0 ? undefined : process.argv[index + 1]
}
const probes = Number(argument('probes') ?? 5)
const pauseMs = Number(argument('pause') ?? 300)

function cpu(): number {
  const usage = process.threadCpuUsage()
  return (usage.user + usage.system) / 1000
}

const kernels = await Kernels.create(await loadEngineModule('relaxed'))
const config = parseModelConfig(
  JSON.stringify({
    model_type: 'qwen3_5_text',
    hidden_size: 1024,
    intermediate_size: 3584,
    num_hidden_layers: 24,
    num_attention_heads: 8,
    num_key_value_heads: 2,
    head_dim: 256,
    vocab_size: 248320,
    rms_norm_eps: 1e-6,
    rope_theta: 10000000,
    partial_rotary_factor: 0.25,
    max_position_embeddings: 4096,
    linear_num_key_heads: 16,
    linear_num_value_heads: 16,
    linear_key_head_dim: 128,
    linear_value_head_dim: 128,
    linear_conv_kernel_dim: 4,
  }),
)
const warmUpMs = warmUpKernels(kernels, warmUpShape(config, 'q4'), ['pairs', 'dot-add'])
console.log(`warm-up (both forms): ${warmUpMs.toFixed(1)} ms wall`)
await new Promise((resolve) => setTimeout(resolve, pauseMs))
for (let probe = 0; probe < probes; probe++) {
  const cpuStarted = cpu()
  const forms = probeDotForms(kernels)
  const cpuMs = cpu() - cpuStarted
  const round = (times: Record<string, number>) =>
    Object.entries(times)
      .map(([form, micros]) => `${form} ${micros.toFixed(1)} µs`)
      .join(', ')
  console.log(
    `probe ${probe + 1}: prefill ${forms.prefill} (${round(forms.probe!.prefill)}), decode ${forms.decode} (${round(forms.probe!.decode)}); cost ${cpuMs.toFixed(2)} ms CPU, ${forms.probe!.milliseconds.toFixed(2)} ms wall`,
  )
}
