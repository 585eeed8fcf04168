import { describe, expect, it } from 'vitest'
import { huggingFaceRepository } from './model-id.ts'

describe('huggingFaceRepository', () => {
  it("names the repository of a .../resolve/<revision>/ URL (its last segment, the revision, was taken: 'main')", () => {
    expect(huggingFaceRepository('https://huggingface.co/onnx-community/Qwen3-0.6B-ONNX/resolve/main/')).toBe(
      'Qwen3-0.6B-ONNX',
    )
    expect(huggingFaceRepository('https://huggingface.co/onnx-community/Qwen3-0.6B-ONNX/resolve/v1.0')).toBe(
      'Qwen3-0.6B-ONNX',
    )
  })

  it('leaves every other location to its last segment', () => {
    expect(huggingFaceRepository('/models/qwen3-0.6b/')).toBeUndefined()
    expect(huggingFaceRepository('https://models.example.com/my-package/')).toBeUndefined()
    expect(huggingFaceRepository('/models/resolve/')).toBeUndefined()
    expect(huggingFaceRepository('r2:model/')).toBeUndefined()
  })
})
