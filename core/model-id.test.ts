import { describe, expect, it } from 'vitest'
import { huggingFaceRepository, modelIdFromLocation } from './model-id.ts'

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

/**
 * Every way a package is named to the device (createClient's model, in Node or a page), to
 * `ondevice serve` / createNodeModelHost and to the Worker (MODEL_URL, MODEL_PREFIX), with the id
 * all of them give it. The marked rows are where the three copies this replaces disagreed (the
 * device's own in load-model.ts, serve's in worker/node.ts, the Worker's in worker/index.ts).
 */
const table: readonly (readonly [location: string, id: string | undefined])[] = [
  ['/models/qwen3-0.6b/', 'qwen3-0.6b'],
  ['/models/qwen3-0.6b', 'qwen3-0.6b'],
  ['/models/qwen3-0.6b//', 'qwen3-0.6b'],
  ['./qwen3-0.6b', 'qwen3-0.6b'],
  ['https://cdn.example/models/qwen3-0.6b/', 'qwen3-0.6b'],
  ['https://cdn.example/models/qwen3-0.6b', 'qwen3-0.6b'],
  // All gave '?token=abc', '#x', 'qwen3-0.6b?v=2': the package's files are fetched without them.
  ['https://cdn.example/models/qwen3-0.6b/?token=abc', 'qwen3-0.6b'],
  ['https://cdn.example/models/qwen3-0.6b?v=2', 'qwen3-0.6b'],
  ['https://cdn.example/models/qwen3-0.6b/#x', 'qwen3-0.6b'],
  ['https://huggingface.co/onnx-community/Qwen3-0.6B-ONNX/resolve/main/', 'Qwen3-0.6B-ONNX'],
  ['https://huggingface.co/onnx-community/Qwen3-0.6B-ONNX/resolve/main', 'Qwen3-0.6B-ONNX'],
  ['https://huggingface.co/onnx-community/Qwen3-0.6B-ONNX/resolve/v1.0/?download=true', 'Qwen3-0.6B-ONNX'],
  ['https://huggingface.co/onnx-community/Qwen3-0.6B-ONNX/resolve/refs%2Fpr%2F3/', 'Qwen3-0.6B-ONNX'],
  ['file:///models/qwen3-0.6b/', 'qwen3-0.6b'],
  // The device (which opens the folder) gave 'my model', serve and the Worker 'my%20model'.
  ['file:///models/my%20model/', 'my model'],
  ['https://cdn.example/models/my%20model/', 'my model'],
  ['/models/my model/', 'my model'],
  ['https://cdn.example/models/caf%C3%A9/', 'café'],
  // Not an escape: the name as written.
  ['https://cdn.example/models/100%/', '100%'],
  ['/models/50%25/', '50%25'],
  // The device gave the whole path (it split on '/' only), the Worker '\models\qwen3-0.6b'.
  ['C:\\models\\qwen3-0.6b', 'qwen3-0.6b'],
  ['C:\\models\\qwen3-0.6b\\', 'qwen3-0.6b'],
  ['C:/models/qwen3-0.6b/', 'qwen3-0.6b'],
  // The Worker split at ':' too: '8787' and 'b'.
  ['http://127.0.0.1:8787/', '127.0.0.1:8787'],
  ['http://127.0.0.1:8787/models/a:b/', 'a:b'],
  // The Worker's R2 and assets sources (the others gave 'r2:model').
  ['r2:model/', 'model'],
  ['r2:models/qwen3-0.6b/', 'qwen3-0.6b'],
  ['assets:/model/', 'model'],
  ['/', undefined],
  ['r2:', undefined],
  ['C:\\', undefined],
]

describe('modelIdFromLocation', () => {
  for (const [location, id] of table)
    it(`${JSON.stringify(location)} → ${JSON.stringify(id)}`, () => {
      expect(modelIdFromLocation(location)).toBe(id)
    })

  it('a page names its package relative to itself: the resolved URL the browser store opens gives the same id', () => {
    // The browser store opens new URL(model, location.href), which percent-encodes a space.
    for (const relative of ['/models/qwen3-0.6b/', 'models/my model/', '../models/café/'])
      expect(modelIdFromLocation(new URL(relative, 'https://app.example/chat/').href)).toBe(
        modelIdFromLocation(relative),
      )
  })
})
