// Starts the real `manage.py runsocket` for the Node suite: its own SQLite file,
// free loopback ports (plain and TLS), and the development certificate as CA.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..", "..");
const PYTHON = process.env.GUARDSITE_PYTHON || join(ROOT, ".venv", "bin", "python");

export async function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

function manage(env, ...args) {
  const result = spawnSync(PYTHON, [join(ROOT, "manage.py"), ...args], {
    env,
    encoding: "utf8",
    timeout: 60_000,
  });
  if (result.status !== 0) {
    throw new Error(`manage.py ${args.join(" ")} failed:\n${result.stderr}`);
  }
  return result.stdout;
}

export async function startServer({ rules = [], env: extraEnv = {} } = {}) {
  const folder = mkdtempSync(join(tmpdir(), "guardsite-js-"));
  const env = {
    ...process.env,
    DATABASE_URL: `sqlite:///${join(folder, "db.sqlite3")}`,
    // The project plus a namespace added without the guard (tests/late_namespaces.py).
    DJANGO_SETTINGS_MODULE: "tests.live_settings",
    GUARDSITE_STATE_DIR: folder,
    PYTHONUNBUFFERED: "1",
    PYTHONWARNINGS: "ignore::DeprecationWarning",
    ...extraEnv,
  };
  // Two probes in a row may be handed the same port once the first is closed.
  const port = await freePort();
  let tlsPort = await freePort();
  for (let tries = 0; tlsPort === port && tries < 10; tries += 1) tlsPort = await freePort();
  manage(env, "migrate", "--no-input", "-v0");
  const url = `http://localhost:${port}`;
  const tlsUrl = `https://localhost:${tlsPort}`;
  manage(env, "whitelist", "add", ...rules.map((rule) => rule.replace("{tls}", tlsUrl).replace("{url}", url)));

  const child = spawn(
    PYTHON,
    [join(ROOT, "manage.py"), "runsocket", `127.0.0.1:${port}`, `https://127.0.0.1:${tlsPort}`],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  child.stdout.on("data", (chunk) => (log += chunk));
  child.stderr.on("data", (chunk) => (log += chunk));
  await new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`runsocket not ready:\n${log}`)), 30_000);
    const check = () => {
      if (log.includes("Quit with CONTROL-C.")) {
        clearTimeout(timer);
        done();
      }
    };
    child.stdout.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`runsocket exited with ${code}:\n${log}`));
    });
  });
  return {
    url,
    tlsUrl,
    ca: readFileSync(join(folder, "tls", "dev-cert.pem")),
    log: () => log,
    manage: (...args) => manage(env, ...args),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((done) => child.once("exit", done));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(folder, { recursive: true, force: true });
    },
  };
}
