import type { IncomingHttpHeaders } from 'node:http'
import { Readable, type Writable } from 'node:stream'
import type { Dispatcher, Pool } from 'undici'
import type { UpstreamPool } from './upstream-pool.js'

/** Bytes of a discarded body read before the connection is given up on instead (undici's dump() reads 128 KiB). */
const DUMP_MAX = 64 * 1024

/**
 * What a streamed body holds before the upstream is paused; undici's own body streams hold as much. A pause
 * stops undici's parser mid-chunk and puts the rest of the socket's chunk back (socket.unshift) to be parsed
 * again on resume: with Node's default of 16 KiB, most 64 KiB chunks of a large answer went through that.
 */
const STREAM_HIGH_WATER_MARK = 64 * 1024

type BodyMode = 'pending' | 'whole' | 'stream' | 'relay' | 'dump'

/**
 * What `#chunks` becomes once the body goes to a stream or is thrown away; frozen, as nothing may be pushed to it
 * then.
 */
const NO_CHUNKS = Object.freeze([]) as unknown as Buffer[]

interface Settle<T> { resolve: (value: T) => void, reject: (err: Error) => void }

/**
 * One request to the upstream MCP server, through undici's `dispatch`, and its answer: status and headers
 * first, for the proxy to decide on, then the body in the one form the proxy asked for: whole (a small
 * JSON-RPC answer), as a stream with backpressure (a large answer), written straight to the client (an event
 * stream), or thrown away.
 *
 * Written for the proxy's hot path: `request()` wraps every answer in an async resource, a Readable and
 * a promise chain, even one that is read whole at once; here a small answer costs one promise for its
 * headers and one for its body. Data that arrives before the proxy has chosen is held (and the upstream
 * paused past `DUMP_MAX` bytes) until it does. On `pool.request()` the same exchange costs 1.29x the CPU per
 * small request (bench/README.md, ablation b2).
 */
export class UpstreamExchange implements Dispatcher.DispatchHandler {
  statusCode = 0
  headers: IncomingHttpHeaders = {}
  readonly #upstream: UpstreamPool
  readonly #pool: Pool
  #controller: Dispatcher.DispatchController | undefined
  #abortReason: Error | undefined
  #responded: Settle<void> | undefined
  #mode: BodyMode = 'pending'
  #chunks: Buffer[] = []
  #bytes = 0
  #ended = false
  #error: Error | undefined
  #whole: Settle<void> | undefined
  #stream: Readable | undefined
  #out: Writable | undefined
  #relayed: ((err?: Error) => void) | undefined

  /** Bytes of the answer's body received so far. */
  get bytes (): number {
    return this.#bytes
  }

  /** Sends the request; `responded()` then tells when the upstream's status and headers are in. */
  constructor (upstream: UpstreamPool, options: Dispatcher.DispatchOptions) {
    this.#upstream = upstream
    this.#pool = upstream.acquire()
    this.#pool.dispatch(options, this)
  }

  /** Resolves once status and headers are in; rejects if the exchange failed or was aborted before. */
  async responded (): Promise<void> {
    if (this.statusCode !== 0) return
    if (this.#error !== undefined) throw this.#error
    await new Promise<void>((resolve, reject) => { this.#responded = { resolve, reject } })
  }

  /** The whole body, if it has all arrived already (a small answer usually comes with its headers). */
  get received (): Buffer | undefined {
    if (!this.#ended || (this.#mode !== 'pending' && this.#mode !== 'whole')) return undefined
    return this.#chunks.length === 1 ? this.#chunks[0] as Buffer : Buffer.concat(this.#chunks, this.#bytes)
  }

  /** The whole body; rejects if the upstream stops short of its Content-Length or the exchange is aborted. */
  async whole (): Promise<Buffer> {
    this.#mode = 'whole'
    if (this.#error !== undefined) throw this.#error
    if (!this.#ended) {
      this.#controller?.resume()
      await new Promise<void>((resolve, reject) => { this.#whole = { resolve, reject } })
    }
    return this.received as Buffer
  }

  /** The body as a stream; destroying it aborts the exchange, an upstream failure destroys it. */
  stream (): Readable {
    this.#mode = 'stream'
    const stream = new Readable({
      highWaterMark: STREAM_HIGH_WATER_MARK,
      read: () => { this.#controller?.resume() },
      destroy: (err, callback) => {
        if (!this.#ended) this.abort(err ?? new Error('the body stream was destroyed'))
        callback(err)
      }
    })
    this.#stream = stream
    // A stream can live for hours: it keeps nothing allocated where every answer's objects are (see onResponseStart).
    const held = this.#chunks
    this.#chunks = NO_CHUNKS
    for (const chunk of held) stream.push(chunk)
    if (this.#error !== undefined) stream.destroy(this.#error)
    else if (this.#ended) stream.push(null)
    return stream
  }

  /**
   * Writes the body straight to `out`, for an event stream: an idle stream lives for hours, and a Readable piped
   * to the client would hold about 1.7 KB more for each (bench/HISTORY.md). undici is paused while `out` is full and
   * resumed on its 'drain'. `done` is called once: without an argument when the body has ended (ending `out` is
   * left to the caller), with the error when the exchange failed or was aborted.
   */
  relay (out: Writable, done: (err?: Error) => void): void {
    this.#mode = 'relay'
    this.#out = out
    this.#relayed = done
    out.on('drain', () => { this.#controller?.resume() })
    const held = this.#chunks
    this.#chunks = NO_CHUNKS
    let full = false
    for (const chunk of held) full = !out.write(chunk)
    if (this.#error !== undefined) this.#settleRelay(this.#error)
    else if (this.#ended) this.#settleRelay()
    else if (!full) this.#controller?.resume()
  }

  #settleRelay (err?: Error): void {
    const done = this.#relayed
    this.#relayed = undefined
    done?.(err)
  }

  /** Throws the body away: read to its end (so the connection is reused) unless it is long. */
  dump (): void {
    this.#mode = 'dump'
    this.#chunks = NO_CHUNKS
    if (this.#bytes > DUMP_MAX) this.abort(new Error('discarded body too long'))
    else this.#controller?.resume()
  }

  /** Cancels the request at any point; what waits on it rejects with `reason`. */
  abort (reason: Error): void {
    if (this.#ended || this.#error !== undefined) return
    if (this.#controller === undefined) this.#abortReason = reason
    else this.#controller.abort(reason)
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#abortReason !== undefined) controller.abort(this.#abortReason)
  }

  onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // undici keeps the raw header buffers on the controller for as long as the request runs: an hour for
    // an event stream. V8 then sees the arrays that its parser allocates for every answer's headers
    // outlive collections, allocates them in the old generation from then on (allocation-site
    // pretenuring), and each dead one there keeps its header buffers, and the socket chunks they are
    // views of, alive until the next full collection: after 1,000 idle streams, 100 KB answers cost
    // 3-4 times as many mark-compacts (bench/HISTORY.md). The parsed `headers` are all the proxy reads.
    // Without it, 100 KB answers next to 1,000 idle streams cost 1.52x the CPU (bench/README.md, ablation b1).
    controller.rawHeaders = null
    // 1xx answers (103 Early Hints) come before the real one.
    if (statusCode < 200) return
    this.statusCode = statusCode
    this.headers = headers
    this.#responded?.resolve()
    this.#responded = undefined
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#bytes += chunk.length
    switch (this.#mode) {
      case 'stream':
        if (!(this.#stream as Readable).push(chunk)) controller.pause()
        return
      case 'relay':
        if (!(this.#out as Writable).write(chunk)) controller.pause()
        return
      case 'dump':
        if (this.#bytes > DUMP_MAX) controller.abort(new Error('discarded body too long'))
        return
      case 'pending':
        // Nobody reads yet: hold a small answer, pause a large one until the proxy decides.
        if (this.#bytes > DUMP_MAX) controller.pause()
    }
    this.#chunks.push(chunk)
  }

  onResponseEnd (): void {
    this.#upstream.release(this.#pool)
    this.#ended = true
    if (this.#mode === 'stream') (this.#stream as Readable).push(null)
    else if (this.#mode === 'relay') this.#settleRelay()
    else this.#whole?.resolve()
    this.#whole = undefined
  }

  onResponseError (_controller: Dispatcher.DispatchController, err: Error): void {
    this.#upstream.release(this.#pool)
    this.#error = err
    if (this.statusCode === 0) this.#responded?.reject(err)
    else if (this.#mode === 'stream') (this.#stream as Readable).destroy(err)
    else if (this.#mode === 'relay') this.#settleRelay(err)
    else this.#whole?.reject(err)
    this.#responded = this.#whole = undefined
  }
}
