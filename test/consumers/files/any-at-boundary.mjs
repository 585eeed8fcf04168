// Finds `any` at the packed package's public boundary, with the project's own TypeScript: every
// export of every entry (ondevice/worker, the Workers entry, is checked in the wrangler project),
// walked through the parameters, results, properties and type arguments of ondevice's own
// declarations. tsc passes an `any` silently (a parameter typed from an unresolved import, an
// explicit `any`), and a user's code then loses its checks without a word. Not counted: what
// TypeScript writes for every private member (`private x;`), and a generic's own `any` default
// (AsyncGenerator<T>'s TReturn and TNext, Vite's Plugin<A = any>). Prints the paths where `any`
// was found as a JSON array; a planted `any` in a probe module must be among them, so an empty
// list means the walk ran.
import ts from 'typescript'

const entries = [
  'ondevice',
  'ondevice/core',
  'ondevice/runtime',
  'ondevice/worker/node',
  'ondevice/builder',
  'ondevice/ai-sdk',
  'ondevice/vite',
  'ondevice/test',
]
const root = `${process.cwd()}/`
const files = {
  [`${root}boundary-entries.ts`]: entries
    .map((entry, index) => `export * as e${index} from '${entry}'`)
    .join('\n'),
  [`${root}boundary-probe.ts`]:
    'export declare function planted(options: { readonly depth: { value: any } }): void\n',
}
const options = {
  strict: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
  types: ['node'],
}
const host = ts.createCompilerHost(options)
const readSource = host.getSourceFile.bind(host)
host.getSourceFile = (name, ...rest) =>
  name in files ? ts.createSourceFile(name, files[name], ts.ScriptTarget.ES2022) : readSource(name, ...rest)
const fileExists = host.fileExists.bind(host)
host.fileExists = (name) => name in files || fileExists(name)
const program = ts.createProgram(Object.keys(files), options, host)
const checker = program.getTypeChecker()
const errors = ts.getPreEmitDiagnostics(program)
if (errors.length > 0) {
  console.error(errors.map((error) => ts.flattenDiagnosticMessageText(error.messageText, '\n')).join('\n'))
  process.exit(1)
}

const ours = (declaration) => {
  const file = declaration.getSourceFile().fileName
  return file.includes('/node_modules/ondevice/') || file in files
}
const isPrivate = (symbol) =>
  symbol.name.startsWith('#') ||
  (symbol.declarations ?? []).some(
    (declaration) => (ts.getCombinedModifierFlags(declaration) & ts.ModifierFlags.Private) !== 0,
  )
const found = new Set()
const seen = new Set()

function walk(type, path, depth) {
  if (type.flags & ts.TypeFlags.Any) {
    found.add(path)
    return
  }
  if (depth > 8 || seen.has(type)) return
  seen.add(type)
  if (type.isUnionOrIntersection()) for (const part of type.types) walk(part, path, depth + 1)
  for (const signature of [...type.getCallSignatures(), ...type.getConstructSignatures()]) {
    for (const parameter of signature.getParameters())
      walk(checker.getTypeOfSymbol(parameter), `${path}(${parameter.name})`, depth + 1)
    walk(signature.getReturnType(), `${path}()`, depth + 1)
  }
  if (!(type.flags & ts.TypeFlags.Object)) return
  if (type.objectFlags & ts.ObjectFlags.Reference) {
    const parameters = type.target.typeParameters ?? []
    checker.getTypeArguments(type).forEach((argument, index) => {
      const parameter = parameters[index]
      const byDefault = parameter && checker.getDefaultFromTypeParameter(parameter)
      if (argument.flags & ts.TypeFlags.Any && byDefault && byDefault.flags & ts.TypeFlags.Any) return
      walk(argument, `${path}<${index}>`, depth + 1)
    })
  }
  for (const property of type.getProperties()) {
    if (isPrivate(property) || !(property.declarations ?? []).some(ours)) continue
    walk(checker.getTypeOfSymbol(property), `${path}.${property.name}`, depth + 1)
  }
  const index = type.getStringIndexType()
  if (index && (type.symbol?.declarations ?? []).some(ours)) walk(index, `${path}[string]`, depth + 1)
}

for (const file of Object.keys(files)) {
  const module = checker.getSymbolAtLocation(program.getSourceFile(file))
  for (const exported of checker.getExportsOfModule(module)) {
    const namespace = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported
    const members =
      namespace.flags & ts.SymbolFlags.ValueModule ? checker.getExportsOfModule(namespace) : [namespace]
    const entry = file.endsWith('probe.ts') ? 'probe' : entries[Number(exported.name.slice(1))]
    for (const member of members) {
      const symbol = member.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(member) : member
      if (symbol.flags & ts.SymbolFlags.Value)
        walk(checker.getTypeOfSymbol(symbol), `${entry}:${member.name}`, 0)
      if (symbol.flags & ts.SymbolFlags.Type)
        walk(checker.getDeclaredTypeOfSymbol(symbol), `${entry}:${member.name}`, 0)
    }
  }
}
console.log(JSON.stringify([...found].sort()))
