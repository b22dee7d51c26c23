/**
 * The request-cost baseline: a minimal Ts.ED 8 application (platform-express, the framework's
 * defaults, one controller) answering `GET /ping` with a small JSON object. Whatever our API
 * spends per request above it is ours: our settings, middlewares and handlers. Run as its own
 * process by `startMinimalTsed()`; PORT configures it; prints `listening <port>` once it accepts
 * connections.
 */
import {type ChildProcess, spawn} from "node:child_process";
import {fileURLToPath} from "node:url";
import {Configuration, Controller} from "@tsed/di";
import {PlatformExpress} from "@tsed/platform-express";
import {Get, Returns} from "@tsed/schema";
import {freePort} from "./app.js";

export async function startMinimalTsed() {
  const port = await freePort();
  // BENCH_CPU_PROF=<dir>: a V8 CPU profile written there when it stops (as startApi does).
  const profile = process.env.BENCH_CPU_PROF ? [`--cpu-prof`, `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child: ChildProcess = spawn(
    process.execPath,
    [...profile, "--import", "@swc-node/register/esm-register", fileURLToPath(import.meta.url)],
    {
      cwd: fileURLToPath(new URL("../..", import.meta.url)),
      env: {...process.env, NODE_ENV: "production", PORT: String(port)},
      stdio: ["ignore", "pipe", "inherit"]
    }
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("minimal Ts.ED did not start in 60 s")), 60_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("listening")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`minimal Ts.ED exited with ${code}`)));
  });
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : (child.once("exit", () => resolve()), child.kill("SIGTERM"))))
  };
}

@Controller("/ping")
class PingController {
  @Get("/")
  @Returns(200)
  ping() {
    return {ok: true};
  }
}

// The framework's defaults but its logger's level: our API runs the benchmarks with LOG_LEVEL=warn too.
@Configuration({mount: {"/": [PingController]}, logger: {level: "warn"}, disableComponentsScan: true})
class MinimalServer {}

async function serve() {
  const port = Number(process.env.PORT);
  const platform = await PlatformExpress.bootstrap(MinimalServer, {httpPort: `127.0.0.1:${port}`, httpsPort: false});
  await platform.listen();
  console.log(`listening ${port}`);
  process.once("SIGTERM", () => void platform.stop().then(() => process.exit(0)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) void serve();
