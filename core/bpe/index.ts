// Byte-pair encoding with the vocabulary and merges in typed arrays, read from tokenizer.json's
// bytes without materialising its big arrays: what keeps a 151k-piece tokenizer small enough for
// a 128 MB Worker isolate. core/tokenizer.ts runs it behind @huggingface/tokenizers' pipeline.
export { type AddedTokenIds, type BpeOptions, CompactBpe } from './bpe-model.ts'
export { MergeTable } from './merge-table.ts'
export { PieceTable, PieceTableBuilder } from './piece-table.ts'
export {
  type ReadTokenizerJson,
  readTokenizerJsonBytes,
  readTokenizerJsonObject,
  TokenizerJsonError,
} from './tokenizer-json.ts'
