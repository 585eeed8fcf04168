import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadOrtWebForNode } from '../../wasm/node.ts'
import { readLlama2cCheckpoint } from '../importers/llama2c.ts'
import { writeModelFile } from '../onnx/index.ts'
import { ReferenceModel } from '../reference/reference-model.ts'
import { argmax, maxAbsDifference, OrtDecoder, type OrtModuleLike } from '../testing/ort-decoder.ts'
import { architectureFor, type BuilderDtype } from './decoder-graph.ts'

// The Llama graphs on onnxruntime-web's WASM backend (the browser / workerd runtime), in Node:
// fp32 parity with the reference, q8 (DynamicQuantizeMatMul, the WASM format) reproducing
// stories260K's golden text, q4 (MatMulNBits) running.

const stories = join(import.meta.dirname, '../../../shared/models/stories260K')
const present = existsSync(join(stories, 'stories260K.bin'))
const folder = mkdtempSync(join(tmpdir(), 'ondevice-wasm-'))
afterAll(() => rmSync(folder, { recursive: true, force: true }))

describe.skipIf(!present)('stories260K graphs on onnxruntime-web (WASM)', () => {
  const weights = present
    ? readLlama2cCheckpoint(new Uint8Array(readFileSync(join(stories, 'stories260K.bin'))))
    : undefined
  const open = async (dtype: BuilderDtype, attention: 'plain' | 'gqa' = 'plain') => {
    const ort = (await loadOrtWebForNode({ numThreads: 1 })).ort as unknown as OrtModuleLike
    const path = join(folder, `${dtype}-${attention}.onnx`)
    const written = writeModelFile(architectureFor(weights!).buildGraph(dtype, { attention }), path)
    return OrtDecoder.createFromBytes(
      ort,
      {
        model: new Uint8Array(readFileSync(path)),
        ...(written.dataPath
          ? {
              externalData: {
                path: `${dtype}-${attention}.onnx_data`,
                data: new Uint8Array(readFileSync(written.dataPath)),
              },
            }
          : {}),
      },
      { kvHeads: 4, headDim: 8 },
    )
  }

  it.each(['plain', 'gqa'] as const)(
    'fp32 (%s attention) matches the reference for a prefill and token-by-token decode',
    async (attention) => {
      const decoder = await open('fp32', attention)
      const tokens = [1, 403, 407, 261, 378, 11, 345, 300, 290, 281, 265, 330]
      const expected = new ReferenceModel(weights!).forward(tokens)
      let worst = 0
      const prefill = await decoder.append(tokens.slice(0, 7))
      for (let i = 0; i < 7; i++) worst = Math.max(worst, maxAbsDifference(prefill[i]!, expected[i]!))
      for (let i = 7; i < tokens.length; i++) {
        const [logits] = await decoder.append([tokens[i]!])
        worst = Math.max(worst, maxAbsDifference(logits!, expected[i]!))
      }
      await decoder.release()
      console.log(
        `stories260K fp32 (${attention} attention) on WASM: max abs logit difference ${worst.toExponential(2)}`,
      )
      expect(worst).toBeLessThanOrEqual(1e-4)
    },
  )

  it.each(['q8', 'q4'] as const)('%s decodes greedily like fp32 does on WASM', async (dtype) => {
    const run = async (d: BuilderDtype) => {
      const decoder = await open(d)
      const tokens: number[] = []
      let [logits] = await decoder.append([1])
      for (let i = 0; i < 24; i++) {
        tokens.push(argmax(logits!))
        ;[logits] = await decoder.append([tokens.at(-1)!])
      }
      await decoder.release()
      return tokens
    }
    const baseline = await run('fp32')
    const quantized = await run(dtype)
    if (dtype === 'q8') expect(quantized).toEqual(baseline)
    else expect(quantized.filter((t, i) => t === baseline[i]).length).toBeGreaterThanOrEqual(5)
  })
})
