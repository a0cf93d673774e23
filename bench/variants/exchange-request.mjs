// Ablation (b) of bench/ablate.mjs: routes/mcp/exchange.js as it would be on undici's public API, `pool.request()`,
// with the interface the proxy uses (responded, received, whole, stream, relay, dump, abort, bytes). Copied over
// dist/routes/mcp/exchange.js in a patched copy of the build; never part of the gateway.
const DUMP_MAX = 64 * 1024

export class UpstreamExchange {
  statusCode = 0
  headers = {}
  #upstream
  #pool
  #abort = new AbortController()
  #answer
  #body
  #bytes = 0
  #released = false

  get bytes () {
    return this.#bytes
  }

  constructor (upstream, options) {
    this.#upstream = upstream
    this.#pool = upstream.acquire()
    this.#answer = this.#pool.request({ ...options, signal: this.#abort.signal }).then((answer) => {
      this.statusCode = answer.statusCode
      this.headers = answer.headers
      this.#body = answer.body
      answer.body.once('close', () => { this.#release() })
    }, (err) => {
      this.#release()
      throw err
    })
    this.#answer.catch(() => {})
  }

  #release () {
    if (this.#released) return
    this.#released = true
    this.#upstream.release(this.#pool)
  }

  async responded () {
    await this.#answer
  }

  get received () {
    return undefined
  }

  async whole () {
    const body = Buffer.from(await this.#body.arrayBuffer())
    this.#bytes = body.length
    return body
  }

  stream () {
    this.#body.on('data', (chunk) => { this.#bytes += chunk.length })
    return this.#body
  }

  relay (out, done) {
    let settled = false
    const settle = (err) => {
      if (settled) return
      settled = true
      done(err)
    }
    const body = this.#body
    body.on('data', (chunk) => {
      this.#bytes += chunk.length
      if (!out.write(chunk)) body.pause()
    })
    out.on('drain', () => { body.resume() })
    body.once('end', () => { settle() })
    body.once('error', (err) => { settle(err) })
  }

  dump () {
    this.#body.dump({ limit: DUMP_MAX }).catch(() => {})
  }

  abort (reason) {
    this.#abort.abort(reason)
  }
}
