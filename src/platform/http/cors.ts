import type {NextFunction, Request, Response} from "express";

/**
 * CORS for the web origins of CORS_ORIGINS, and for no other: a browser page from elsewhere can
 * neither read an answer nor send a preflighted request. Bearer tokens travel in a header, never
 * cookies, so credentials are not allowed. Written by hand because it is this one rule: an exact
 * origin list, the headers our clients send (Authorization, Content-Type, Last-Event-ID for the
 * live stream) and the ones they may read (Retry-After, the request id).
 */
export function corsFor(origins: readonly string[]) {
  const allowed = new Set(origins);
  return (req: Request, res: Response, next: NextFunction) => {
    const origin = req.headers.origin;
    if (origin) res.append("Vary", "Origin");
    if (!origin || !allowed.has(origin)) return next();
    res.setHeader("Access-Control-Allow-Origin", origin);
    if (req.method === "OPTIONS" && req.headers["access-control-request-method"]) {
      res.setHeader("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE");
      res.setHeader("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID");
      res.setHeader("Access-Control-Max-Age", "600");
      res.status(204).end();
      return;
    }
    res.setHeader("Access-Control-Expose-Headers", "Retry-After, X-Request-Id");
    next();
  };
}
