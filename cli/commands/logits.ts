// `ondevice logits --model DIR --ids 1,2,3 [--json]`: the logits of the last position after
// feeding the ids, through the same runtime the SDK uses, so a conversion can be checked
// against another implementation (transformers, llama.cpp, llama2.c).
import { parseArgs } from 'node:util'
import { type Backend, loadModel } from '../../client-runtime/index.ts'
import { InvalidArgumentError } from '../../core/errors.ts'

export const help = `Usage: ondevice logits --model DIR --ids 1,2,3 [options]

Feeds the token ids in one call and prints the last position's logits: the top entries, or all
of them with --json.

Options:
  --model DIR   A model package folder (or URL prefix)
  --ids LIST    Comma-separated token ids
  --dtype D     Weight format (default: the runtime's choice for the backend)
  --backend B   native (onnxruntime-node; the default when installed, else wasm), wasm
                (ondevice's WebAssembly engine; onnxruntime-web where it does not cover the
                model) or ort-wasm (onnxruntime-web's WASM)
  --top N       How many top entries to print (default 10)
  --json        Print { ids, dtype, backend, vocabularySize, logits } with every logit
  --help, -h    Show this help`

/** The flags this command's parser accepts: every one is in `help` (cli/help.test.ts). */
export const options = {
  model: { type: 'string' },
  ids: { type: 'string' },
  dtype: { type: 'string' },
  backend: { type: 'string' },
  top: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options,
    strict: true,
  })
  if (values.help) {
    process.stdout.write(`${help}\n`)
    return 0
  }
  if (!values.model) throw new InvalidArgumentError('--model', 'Pass --model DIR, a model package folder.')
  const ids = (values.ids ?? '')
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => Number(s.trim()))
  if (ids.length === 0 || ids.some((id) => !Number.isInteger(id) || id < 0))
    throw new InvalidArgumentError(
      '--ids',
      `Pass --ids as comma-separated non-negative integers (got ${JSON.stringify(values.ids)}).`,
    )
  const top = values.top === undefined ? 10 : Number(values.top)
  if (!Number.isInteger(top) || top < 1)
    throw new InvalidArgumentError('--top', `--top must be a positive integer (got ${values.top}).`)
  const backend = values.backend as Backend | undefined
  if (backend !== undefined && backend !== 'native' && backend !== 'wasm' && backend !== 'ort-wasm')
    throw new InvalidArgumentError(
      '--backend',
      `--backend must be native or wasm (or ort-wasm) (got ${values.backend}).`,
    )

  const model = await loadModel({
    model: values.model,
    ...(backend ? { backend } : {}),
    ...(values.dtype ? { dtype: values.dtype } : {}),
  })
  try {
    const vocabularySize = model.session.info.vocabularySize
    const outside = ids.find((id) => id >= vocabularySize)
    if (outside !== undefined)
      throw new InvalidArgumentError(
        '--ids',
        `Token id ${outside} is outside the vocabulary (size ${vocabularySize}).`,
      )
    const logits = await model.session.append(ids)
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ ids, dtype: model.dtype, backend: model.backend, vocabularySize, logits: Array.from(logits) })}\n`,
      )
      return 0
    }
    const order = Array.from(logits.keys())
      .sort((a, b) => logits[b]! - logits[a]!)
      .slice(0, top)
    process.stdout.write(
      `last position of ${ids.length} ids (${model.dtype}, ${model.backend}); top ${order.length} of ${vocabularySize}:\n`,
    )
    for (const id of order)
      process.stdout.write(
        `  ${String(id).padStart(7)}  ${logits[id]!.toFixed(6).padStart(12)}  ${JSON.stringify(model.tokenizer.idToToken(id) ?? '')}\n`,
      )
    return 0
  } finally {
    await model.dispose()
  }
}
