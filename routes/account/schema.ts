import { Type } from 'typebox'

const Csrf = Type.String({ minLength: 1, maxLength: 128 })

/** What the page may say after a redirect to it: fixed words, never text from the request. */
export const AccountQuery = Type.Object({
  done: Type.Optional(Type.Union([Type.Literal('revoked'), Type.Literal('signed-out')]))
}, { additionalProperties: false })

export const AccountLoginBody = Type.Object({
  csrf: Csrf,
  username: Type.String({ maxLength: 256 }),
  password: Type.String({ maxLength: 1024 })
}, { additionalProperties: false })

/** A grant id as lib/grants/codes.ts makes them (gwg_ and 43 base64url characters), or near enough to look up. */
export const RevokeBody = Type.Object({
  csrf: Csrf,
  grant: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' })
}, { additionalProperties: false })

export const SignOutBody = Type.Object({ csrf: Csrf }, { additionalProperties: false })

/** The sign-in form's single sign-on button: its CSRF token only. */
export const AccountSsoBody = Type.Object({ csrf: Csrf }, { additionalProperties: false })
