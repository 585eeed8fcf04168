// A raw HTTP/1.1 connection for the body-reading tests (Node's server and workerd's): the test
// writes the request head and then the body in whatever pieces and pauses it needs, and reads
// what the server sent, byte for byte, whenever it likes.
import { connect, type Socket } from 'node:net'

export interface RawConnection {
  readonly socket: Socket
  /** Everything the server sent so far. */
  text(): string
  /** Resolves once the server has closed (or reset) the connection. */
  readonly closed: Promise<void>
  /** Writes unless the connection is already gone. */
  write(data: string): void
}

/**
 * Connects to 127.0.0.1:`port` (from `localAddress` when given: another client, 127.0.0.2 say) and
 * writes `head` at once; the socket is added to `sockets` for cleanup.
 */
export function openRawConnection(
  port: number,
  head: string,
  sockets: Socket[],
  localAddress?: string,
): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress })
    sockets.push(socket)
    let received = ''
    socket.setEncoding('utf8')
    socket.on('data', (data: string) => {
      received += data
    })
    // A write after the server closed, or its reset: the answer read so far is what counts.
    socket.on('error', () => undefined)
    const closed = new Promise<void>((done) => socket.once('close', () => done()))
    socket.once('connect', () => {
      socket.write(head)
      resolve({
        socket,
        text: () => received,
        closed,
        write: (data) => {
          if (!socket.destroyed) socket.write(data)
        },
      })
    })
    socket.once('error', reject)
  })
}
