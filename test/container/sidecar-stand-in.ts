// A stand-in for the ingress/egress sidecar image that `wrangler dev` runs beside each container
// (cloudflare/proxy-everything, pulled from Docker Hub, which this machine cannot reach). workerd
// starts it with `--http-ingress-address HOST:PORT --http-egress-port P ...`, asks `PUT /egress`
// and `GET /ca`, and reaches the app through it with `CONNECT` (the app shares this sidecar's
// network namespace, so the target is 127.0.0.1:<port>). Ingress only: it does not intercept the
// container's outbound traffic, so Cloudflare's egress rules (enableInternet, allowedHosts,
// outbound handlers) are not enforced or served under it. Test tooling, run by Node's type
// stripping inside a Docker image (tools: test/container/durable-object.test.ts).
import { createServer } from 'node:http'
import { connect } from 'node:net'

const argv = process.argv.slice(2)
const ingressFlag = argv.indexOf('--http-ingress-address')
const ingress = ingressFlag >= 0 ? (argv[ingressFlag + 1] ?? '0.0.0.0:39001') : '0.0.0.0:39001'
const separator = ingress.lastIndexOf(':')
const host = ingress.slice(0, separator)
const port = Number(ingress.slice(separator + 1))

const server = createServer((request, response) => {
  request.resume()
  request.on('end', () => {
    if (request.method === 'PUT' && request.url === '/egress') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    } else if (request.method === 'GET' && request.url === '/ca') {
      // A syntactically valid PEM block; nothing is intercepted, so nothing is signed with it.
      response.writeHead(200).end('-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n')
    } else {
      response.writeHead(404).end()
    }
  })
})

server.on('connect', (request, socket, head) => {
  const target = String(request.headers['x-dst-addr'] ?? request.url ?? '')
  const targetPort = Number(target.slice(target.lastIndexOf(':') + 1))
  const upstream = connect(targetPort, '127.0.0.1')
  upstream.once('connect', () => {
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    if (head.length > 0) upstream.write(head)
    upstream.pipe(socket)
    socket.pipe(upstream)
  })
  // The app is not listening yet (starting): workerd retries until its port answers.
  upstream.once('error', () => socket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n'))
  socket.on('error', () => upstream.destroy())
})

server.listen(port, host, () => console.log(`sidecar stand-in: ingress on ${ingress}`))
