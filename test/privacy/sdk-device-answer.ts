// A user's script: the SDK answers on the device only (the embedded default package, Node's
// native runtime), then stays up for a while, the time ONNX Runtime's telemetry would take to
// report (about ten seconds after the first session), so the trace around it would see it.
import { createClient } from '../../sdk/index.ts'

const lingerMs = Number(process.argv[2] ?? '0')
const ai = createClient({ policy: 'device-only' })
const result = await ai.chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 4 })
process.stdout.write(`${JSON.stringify({ route: result.route, tokens: result.usage.completionTokens })}\n`)
await new Promise((resolve) => setTimeout(resolve, lingerMs))
await ai.dispose()
