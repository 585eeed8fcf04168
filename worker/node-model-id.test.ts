// createNodeModelHost (what `ondevice serve --model` runs) names a package folder given relative
// to the working directory as the device does: the device's Node store opens resolve(folder)
// (client-runtime/store/node-store.ts), `ondevice edge` names resolve(folder) too, and a handoff
// whose edge model list fails asks the edge for the device's id. Naming the text as written gave
// `.` for `--model .` and `0.6b` for `--model qwen3:0.6b` (its `qwen3:` read as a scheme, like the
// Worker's `r2:`), so those handoffs were refused as model_not_found.
import { basename, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { modelIdFromLocation } from '../core/model-id.ts'
import { createNodeModelHost, modelIdFromSource } from './node.ts'

describe("createNodeModelHost's default id for a relative folder is the device's", () => {
  const cases: readonly (readonly [model: string, id: string])[] = [
    ['qwen3:0.6b', 'qwen3:0.6b'],
    ['qwen3:0.6b/', 'qwen3:0.6b'],
    ['.', basename(process.cwd())],
    ['./', basename(process.cwd())],
    ['models/..', basename(process.cwd())],
  ]
  for (const [model, id] of cases)
    it(`${JSON.stringify(model)} → ${JSON.stringify(id)}`, async () => {
      // The id the device gives the same folder (its store hands load-model the resolved path).
      expect(modelIdFromLocation(resolve(model))).toBe(id)
      expect(modelIdFromSource(model)).toBe(id)
      const host = createNodeModelHost({ model, backend: 'wasm' })
      try {
        expect(host.modelId).toBe(id)
      } finally {
        await host.dispose()
      }
    })

  it('URLs and absolute paths keep their ids', () => {
    expect(modelIdFromSource('https://cdn.example/models/my%20model/?v=2')).toBe('my model')
    expect(modelIdFromSource('file:///models/qwen3-0.6b/')).toBe('qwen3-0.6b')
    expect(modelIdFromSource('/models/qwen3:0.6b/')).toBe('qwen3:0.6b')
    expect(modelIdFromSource('https://huggingface.co/onnx-community/Qwen3-0.6B-ONNX/resolve/main/')).toBe(
      'Qwen3-0.6B-ONNX',
    )
  })
})
