import type {IncomingMessage} from "node:http";
import express, {type NextFunction, type Request, type Response} from "express";

/** Deeper than this, a JSON body is refused before it is parsed into objects: no document of the API nests past 5 levels. */
export const MAX_JSON_DEPTH = 32;

/** A client error body-parser passes on: status 400, a message the error filter shows as is. */
class UnsafeJsonError extends Error {
  readonly status = 400;
  readonly expose = true;
  readonly type = "entity.unsafe";
}

const BACKSLASH = 0x5c;
const QUOTE = 0x22;

/**
 * Checks the raw JSON text in one pass before it is parsed: nesting deeper than MAX_JSON_DEPTH
 * (a 100 kB `[[[[…]]]]` overflowed the stack of the validation-error formatter) and the escaped
 * NUL character `\u0000` in any string (Postgres text cannot hold it: the INSERT failed with a
 * 500). By hand, over bytes, because no JSON library bounds depth, and this costs about as much
 * as reading the body once (a 1,000-reading batch: ~60 kB, ~0.1 ms).
 */
export function assertSafeJson(body: Buffer): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i]!;
    if (inString) {
      if (byte === BACKSLASH) {
        // \u0000: the only way JSON can carry a NUL (a raw NUL byte is not valid JSON).
        if (body[i + 1] === 0x75 && body[i + 2] === 0x30 && body[i + 3] === 0x30 && body[i + 4] === 0x30 && body[i + 5] === 0x30) {
          throw new UnsafeJsonError("The request body holds a NUL character (\\u0000), which no field accepts");
        }
        i++;
      } else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) inString = true;
    else if (byte === 0x7b || byte === 0x5b) {
      if (++depth > MAX_JSON_DEPTH) throw new UnsafeJsonError(`The request body nests deeper than ${MAX_JSON_DEPTH} levels`);
    } else if (byte === 0x7d || byte === 0x5d) depth--;
  }
}

/**
 * express.json with the API's limit and the checks of assertSafeJson. A request without a body
 * (every GET: no Content-Length, no Transfer-Encoding, as type-is's hasBody decides) skips
 * body-parser, which otherwise spends a few µs per request finding that out.
 */
export function jsonBodyParser(limit: string) {
  const parse = express.json({limit, strict: true, verify: (_req: IncomingMessage, _res: unknown, body: Buffer) => assertSafeJson(body)});
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.headers["transfer-encoding"] === undefined && req.headers["content-length"] === undefined) return next();
    parse(req, res, next);
  };
}
