// `mcp-oauth-gateway hash-password` (issue 19): at a terminal the password is typed without echo; piped, it is
// the first line; either way never an argument. Driven here through streams that stand in for the terminal.
import { PassThrough } from 'node:stream'
import t from 'tap'
import { hashPasswordCommand } from '../../lib/hash-password-command.js'
import { verifyPassword } from '../../lib/passwords.js'

/** A stand-in terminal: typed text arrives as keystrokes, raw mode is recorded. */
function terminal (keys: string): { input: NodeJS.ReadStream, rawModes: boolean[] } {
  const input = new PassThrough() as unknown as NodeJS.ReadStream & { isTTY: boolean }
  const rawModes: boolean[] = []
  input.isTTY = true
  input.setRawMode = (mode: boolean) => { rawModes.push(mode); return input }
  setImmediate(() => { (input as unknown as PassThrough).write(keys) })
  return { input, rawModes }
}

function sink (): { stream: PassThrough, text: () => string } {
  const stream = new PassThrough()
  let text = ''
  stream.on('data', (chunk: Buffer) => { text += chunk.toString('utf8') })
  return { stream, text: () => text }
}

t.test('at a terminal: typed without echo, backspace edits, Enter ends; raw mode is restored', async (t) => {
  const { input, rawModes } = terminal('pas\u007fss wörd\r')
  const out = sink()
  const prompt = sink()
  t.equal(await hashPasswordCommand(input, out.stream, prompt.stream), 0)
  t.ok(await verifyPassword('pass wörd', out.text().trim()), 'the hash is of what was typed, after the backspace')
  t.equal(prompt.text(), 'Password: \n', 'the prompt, and nothing of the password echoed')
  t.same(rawModes, [true, false])
})

t.test('at a terminal: Ctrl-C gives up with nothing printed', async (t) => {
  const { input } = terminal('secret\u0003')
  const out = sink()
  const prompt = sink()
  t.equal(await hashPasswordCommand(input, out.stream, prompt.stream), 1)
  t.equal(out.text(), '')
  t.match(prompt.text(), 'no password given')
})

t.test('piped: the first line; a password longer than the login form takes is refused', async (t) => {
  const piped = (text: string): NodeJS.ReadStream => {
    const input = new PassThrough()
    input.end(text)
    return input as unknown as NodeJS.ReadStream
  }
  const out = sink()
  t.equal(await hashPasswordCommand(piped('first\nsecond\n'), out.stream, sink().stream), 0)
  t.ok(await verifyPassword('first', out.text().trim()))
  const prompt = sink()
  t.equal(await hashPasswordCommand(piped('x'.repeat(1025)), sink().stream, prompt.stream), 1)
  t.match(prompt.text(), 'at most 1024 characters')
})
