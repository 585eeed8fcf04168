// `ondevice inspect DIR [--json]`: what a model package holds: architecture and dimensions, the
// ONNX files per dtype with sizes, and each graph's opsets, inputs and outputs (names, types,
// symbolic dims), read straight from the protobuf (no runtime needed).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { formatSize } from '../../builder/cli-options.ts'
import { readModelSummary } from '../../builder/onnx/model-reader.ts'
import { InvalidArgumentError } from '../../core/errors.ts'
import { dtypeOfOnnxFile, parseModelConfig, parsePackageManifest } from '../../core/model-package.ts'

export const help = `Usage: ondevice inspect DIR [--json]

Shows a model package: architecture, dimensions, weight formats and files with sizes, and every
ONNX graph's opsets, inputs and outputs.

Options:
  --json      Print everything as one JSON object
  --help, -h  Show this help`

export interface OnnxFileReport {
  readonly path: string
  readonly dtype: string | undefined
  readonly bytes: number
  readonly externalDataBytes: number
  readonly opsets: Readonly<Record<string, number>>
  readonly inputs: readonly { name: string; type: string; dims: readonly (number | string)[] | undefined }[]
  readonly outputs: readonly { name: string; type: string; dims: readonly (number | string)[] | undefined }[]
  readonly operators: Readonly<Record<string, number>>
}

export function inspectDirectory(directory: string) {
  const configPath = join(directory, 'config.json')
  if (!existsSync(configPath))
    throw new InvalidArgumentError('DIR', `${configPath} does not exist: pass a model package folder.`)
  const config = parseModelConfig(readFileSync(configPath, 'utf8'))
  const manifestPath = join(directory, 'manifest.json')
  const manifest = existsSync(manifestPath)
    ? parsePackageManifest(readFileSync(manifestPath, 'utf8'))
    : undefined
  const onnxFolder = join(directory, 'onnx')
  const onnxFiles: OnnxFileReport[] = []
  if (existsSync(onnxFolder))
    for (const name of readdirSync(onnxFolder)
      .filter((n) => n.endsWith('.onnx'))
      .sort()) {
      const path = join(onnxFolder, name)
      const summary = readModelSummary(new Uint8Array(readFileSync(path)))
      const operators: Record<string, number> = {}
      for (const node of summary.nodes) {
        const key = node.domain ? `${node.domain}.${node.opType}` : node.opType
        operators[key] = (operators[key] ?? 0) + 1
      }
      const dataPath = `${path}_data`
      onnxFiles.push({
        path: `onnx/${name}`,
        dtype: dtypeOfOnnxFile(`onnx/${name}`),
        bytes: statSync(path).size,
        externalDataBytes: existsSync(dataPath) ? statSync(dataPath).size : 0,
        opsets: summary.opsets,
        inputs: summary.inputs.map((i) => ({ name: i.name, type: i.type, dims: i.dims })),
        outputs: summary.outputs.map((o) => ({ name: o.name, type: o.type, dims: o.dims })),
        operators,
      })
    }
  const { raw: _raw, ...dimensions } = config
  return { directory, config: dimensions, manifest, onnxFiles }
}

function formatValue(v: {
  name: string
  type: string
  dims: readonly (number | string)[] | undefined
}): string {
  return `${v.name}: ${v.type}[${(v.dims ?? ['?']).join(', ')}]`
}

/** The flags this command's parser accepts: every one is in `help` (cli/help.test.ts). */
export const options = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options,
    allowPositionals: true,
    strict: true,
  })
  if (values.help) {
    process.stdout.write(`${help}\n`)
    return 0
  }
  const directory = positionals[0]
  if (!directory) throw new InvalidArgumentError('DIR', 'Pass the package folder: ondevice inspect DIR.')
  const report = inspectDirectory(directory)
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
    return 0
  }
  const c = report.config
  const lines = [
    `${directory}`,
    `  architecture  ${c.modelType}${report.manifest?.name ? ` (${report.manifest.name})` : ''}`,
    `  dimensions    hidden ${c.hiddenSize}, MLP ${c.intermediateSize}, layers ${c.numHiddenLayers}, heads ${c.numAttentionHeads} (KV ${c.numKeyValueHeads}) × ${c.headDim}, vocab ${c.vocabSize}`,
    `  rope / norm   theta ${c.ropeTheta}${c.partialRotaryFactor < 1 ? `, partial ${c.partialRotaryFactor}` : ''}, eps ${c.rmsNormEps}, context ${c.maxPositionEmbeddings}, tied embeddings ${c.tieWordEmbeddings}`,
  ]
  if (report.manifest) {
    lines.push(`  dtypes        ${report.manifest.dtypes.join(', ')}`)
    for (const [dtype, bytes] of Object.entries(report.manifest.estimatedMemoryBytes)) {
      // Per backend where the manifest has them (the router reads the one that will run).
      const byBackend =
        report.manifest.estimatedMemory?.[dtype as keyof typeof report.manifest.estimatedMemoryBytes]
      const detail = byBackend
        ? Object.entries(byBackend)
            .map(([backend, figure]) => `${backend} ~${formatSize(figure?.bytes ?? 0)}`)
            .join(', ')
        : `~${formatSize(bytes ?? 0)}`
      lines.push(`  memory ${dtype.padEnd(6)} ${detail} (context ${report.manifest.contextLength ?? '?'})`)
    }
    lines.push('  files')
    const width = Math.max(36, ...report.manifest.files.map((file) => file.path.length))
    for (const file of report.manifest.files)
      lines.push(
        `    ${file.path.padEnd(width)} ${formatSize(file.bytes).padStart(10)}  ${file.sha256.slice(0, 12)}`,
      )
  } else lines.push('  manifest      none (sizes from the files; no integrity hashes)')
  for (const file of report.onnxFiles) {
    lines.push(
      `  ${file.path} (${file.dtype ?? 'unknown dtype'}; ${formatSize(file.bytes)} + ${formatSize(file.externalDataBytes)} external data; opsets ${Object.entries(
        file.opsets,
      )
        .map(([d, v]) => `${d || 'ai.onnx'} ${v}`)
        .join(', ')})`,
    )
    lines.push(
      `    inputs   ${file.inputs.slice(0, 5).map(formatValue).join('\n             ')}${file.inputs.length > 5 ? `\n             ... ${file.inputs.length - 5} more` : ''}`,
    )
    lines.push(
      `    outputs  ${file.outputs.slice(0, 3).map(formatValue).join('\n             ')}${file.outputs.length > 3 ? `\n             ... ${file.outputs.length - 3} more` : ''}`,
    )
    const ops = Object.entries(file.operators).sort((a, b) => b[1] - a[1])
    lines.push(`    ops      ${ops.map(([op, n]) => `${op}×${n}`).join(' ')}`)
  }
  process.stdout.write(`${lines.join('\n')}\n`)
  return 0
}
