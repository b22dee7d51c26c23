import type {NextFunction, Request, Response} from "express";
import helmet from "helmet";

/** The API answers JSON only: nothing may run, load or frame anything under it. */
const apiHeaders = replayed(
  helmet({
    contentSecurityPolicy: {useDefaults: false, directives: {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}}
  })
);

/**
 * Swagger UI (`/doc`): Ts.ED renders its page with an inline script (the UI's configuration) and an
 * inline style, so those need 'unsafe-inline' there, and only there; its scripts, styles and the
 * OpenAPI document come from this origin, its fonts from Google's. No `upgrade-insecure-requests`:
 * a developer's http://localhost would load nothing.
 */
const swaggerUiHeaders = replayed(
  helmet({
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
  })
);

type Middleware = (req: Request, res: Response, next: NextFunction) => void;

/**
 * What `middleware` does to an answer, recorded once and replayed on each: helmet's headers depend
 * on its options only (it reads nothing of the request), so one loop of setHeader gives every answer
 * the same headers without running helmet's thirteen middlewares per request (bench:profile: ~10 µs
 * of the ~140 µs the API spent on GET /health/live above a minimal Ts.ED app). A middleware that
 * called anything but setHeader/removeHeader fails here, at start-up, not on a request.
 */
function replayed(middleware: Middleware): Middleware {
  const set: [string, string][] = [];
  const removed: string[] = [];
  const recorder = {
    setHeader: (name: string, value: string) => void set.push([name, value]),
    removeHeader: (name: string) => void removed.push(name)
  };
  let called = false;
  middleware({} as Request, recorder as unknown as Response, () => (called = true));
  if (!called) throw new Error("a replayed header middleware must call next() synchronously");
  return (_req, res, next) => {
    for (const [name, value] of set) res.setHeader(name, value);
    for (const name of removed) res.removeHeader(name);
    next();
  };
}

/**
 * Security headers (helmet: CSP, nosniff, frame and referrer policies, HSTS, no X-Powered-By) on every answer,
 * and `Cache-Control: no-store` on every `/api` answer, errors included: they are a tenant's data,
 * which no shared cache or browser history may keep. Set here, before any route runs, so no path
 * (a 401 from auth, a 404 of no route, an error filter) can answer without it.
 */
export function securityHeaders(req: Request, res: Response, next: NextFunction): void {
  if (req.path.startsWith("/api/")) res.setHeader("Cache-Control", "no-store");
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
