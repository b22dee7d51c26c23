import type {NextFunction, Request, Response} from "express";
import helmet from "helmet";

/** The API answers JSON only: nothing may run, load or frame anything under it. */
const apiHeaders = helmet({
  contentSecurityPolicy: {useDefaults: false, directives: {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}}
});

/**
 * Swagger UI (`/doc`): Ts.ED renders its page with an inline script (the UI's configuration) and an
 * inline style, so those need 'unsafe-inline' there, and only there; its scripts, styles and the
 * OpenAPI document come from this origin, its fonts from Google's. No `upgrade-insecure-requests`:
 * a developer's http://localhost would load nothing.
 */
const swaggerUiHeaders = helmet({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      "default-src": ["'self'"],
      "script-src": ["'self'", "'unsafe-inline'"],
      "style-src": ["'self'", "'unsafe-inline'", "https://fonts.googleapis.com"],
      "font-src": ["'self'", "https://fonts.gstatic.com"],
      "img-src": ["'self'", "data:"],
      "connect-src": ["'self'"],
      "frame-ancestors": ["'none'"],
      "base-uri": ["'self'"],
      "form-action": ["'self'"],
      "object-src": ["'none'"]
    }
  }
});

/** Security headers (helmet: CSP, nosniff, frame and referrer policies, HSTS, no X-Powered-By) on every answer. */
export function securityHeaders(req: Request, res: Response, next: NextFunction): void {
  (req.path === "/doc" || req.path.startsWith("/doc/") ? swaggerUiHeaders : apiHeaders)(req, res, next);
}

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * The request id logs and the `X-Request-Id` answer carry: the client's when it is short and made
 * of safe characters (a proxy's trace id), else a new one. A client's id of any length and content
 * would otherwise be echoed and written into every log line of the request.
 */
export function requestId(req: {get(name: string): string | undefined}): string {
  const given = req.get("x-request-id");
  return given !== undefined && SAFE_REQUEST_ID.test(given) ? given : crypto.randomUUID().replaceAll("-", "");
}
