import { hashPassword } from './passwords.js'

/*
 * `mcp-oauth-gateway hash-password`: a password in, a line for the users file out. The password is read from
 * stdin, never from the command line (argv shows in `ps` and in shell history); at a terminal it is typed
 * without echo, otherwise it is the first line of the input (`… | mcp-oauth-gateway hash-password`).
 */

const MAX_PASSWORD_LENGTH = 1024

export async function hashPasswordCommand (
  input: NodeJS.ReadStream = process.stdin,
  output: NodeJS.WritableStream = process.stdout,
  prompt: NodeJS.WritableStream = process.stderr
): Promise<number> {
  const password = input.isTTY === true ? await typed(input, prompt) : await firstLine(input)
  if (password === undefined || password === '') {
    prompt.write('hash-password: no password given\n')
    return 1
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    prompt.write(`hash-password: passwords are at most ${MAX_PASSWORD_LENGTH} characters (the login form's limit)\n`)
    return 1
  }
  output.write(`${await hashPassword(password)}\n`)
  return 0
}

async function firstLine (input: NodeJS.ReadableStream): Promise<string | undefined> {
  let text = ''
  for await (const chunk of input) {
    text += String(chunk)
    if (text.includes('\n')) break
  }
  return text.split(/\r?\n/, 1)[0]
}

/** A password typed at a terminal, not echoed; Enter ends it, Ctrl-C or Ctrl-D gives up. */
async function typed (input: NodeJS.ReadStream, prompt: NodeJS.WritableStream): Promise<string | undefined> {
  prompt.write('Password: ')
  input.setRawMode(true)
  input.setEncoding('utf8')
  let password = ''
  try {
    for await (const chunk of input) {
      for (const char of String(chunk)) {
        if (char === '\r' || char === '\n') return password
        if (char === '\u0003' || char === '\u0004') return undefined
        password = char === '\u007f' || char === '\b' ? password.slice(0, -1) : password + char
      }
    }
    return password
  } finally {
    input.setRawMode(false)
    input.pause()
    prompt.write('\n')
  }
}
