// Load generator for bench/run.py: speaks Engine.IO 4 / Socket.IO 5 over raw WebSockets
// (package `ws`), so the client costs little and measures only what the server does.
//
//   node bench/loadgen.mjs connect URL ORIGIN CONCURRENCY SECONDS
//     Each worker loops: open a WebSocket, connect to namespace "/", wait for the answer
//     (CONNECT or CONNECT_ERROR), close. Prints one JSON line of counts and latencies.
//   node bench/loadgen.mjs hold URL ORIGIN COUNT SECONDS
//     Opens COUNT connected sockets, prints "OPENED n", answers pings for SECONDS,
//     then prints one JSON line saying how many are still open.
//   node bench/loadgen.mjs mixed URL ALLOWED,REFUSED CONCURRENCY TOTAL
//     Exactly TOTAL connects, every other one from the refused origin, each worker
//     from its own loopback address (127.0.0.2 and up); counts wrong decisions.
//   node bench/loadgen.mjs echo URL ORIGIN SOCKETS SECONDS
//     Opens SOCKETS connected sockets; each loops: emit "echo" with PAYLOAD bytes
//     (default 100) and an ack, wait for the ack. Prints acks a second.
// TRANSPORT=polling makes connect use HTTP long-polling, as a client that never upgrades:
// handshake, CONNECT by POST, GET until the answer, then leave.
// LOCAL_ADDRESS=127.0.0.2 sends from that loopback address; LOCAL_ADDRESS=spread:N
// sends connect's k-th connect from 127.0.N.(1 + k % 250), as many users. A
// handshake answered with HTTP 403 counts as refused, 429 as limited, any other
// status as an error.
import http from "node:http";
import WebSocket from "ws";

const [mode, base, origin, amountText, secondsText] = process.argv.slice(2);
const localAddress = process.env.LOCAL_ADDRESS || undefined;

function addressFor(index) {
  if (!localAddress?.startsWith("spread:")) return localAddress;
  return `127.0.${localAddress.slice(7)}.${1 + (index % 250)}`;
}
const amount = Number(amountText);
const seconds = Number(secondsText);
const endpoint = base.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket";
const pollingEndpoint = base + "/socket.io/?EIO=4&transport=polling";
const polling = process.env.TRANSPORT === "polling";

function openSocket(onAnswer, from = origin, address = localAddress) {
  const ws = new WebSocket(endpoint, { origin: from, perMessageDeflate: false, localAddress: address });
  ws.on("unexpected-response", (request, response) => {
    const kind = { 403: "refused", 429: "limited" }[response.statusCode] ?? "error";
    if (kind === "error") serverErrors.push(response.statusCode);
    request.destroy();
    onAnswer(kind, ws);
  });
  let opened = false;
  ws.on("message", (raw) => {
    const text = raw.toString();
    if (text === "2") return ws.send("3"); // Engine.IO ping -> pong
    if (!opened && text.startsWith("0")) {
      opened = true;
      return ws.send("40");
    }
    if (text.startsWith("40")) onAnswer("connected", ws);
    else if (text.startsWith("44")) onAnswer("refused", ws);
  });
  ws.on("error", () => onAnswer("error", ws));
  return ws;
}

const serverErrors = [];

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function connectMode() {
  const latencies = [];
  const counts = { connected: 0, refused: 0, limited: 0, error: 0 };
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let startedConnects = 0;
  // COUNT=n: exactly n connects, however long they take (bench/instructions.py).
  const count = Number(process.env.COUNT || Infinity);
  const connect = polling ? pollingConnectOnce : connectOnce;
  const worker = async () => {
    while (performance.now() < deadline && startedConnects < count) {
      const t0 = performance.now();
      const outcome = await connect(origin, addressFor(startedConnects++));
      counts[outcome] += 1;
      if (outcome !== "error") latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: amount }, worker));
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  latencies.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      ...counts,
      seconds: elapsed,
      rate: (counts.connected + counts.refused) / elapsed,
      p50_ms: percentile(latencies, 50),
      p99_ms: percentile(latencies, 99),
      client_cpu_seconds: (cpu.user + cpu.system) / 1e6,
      server_errors: serverErrors.length,
    }),
  );
}

async function holdMode() {
  const sockets = [];
  let closedEarly = 0;
  let failed = 0;
  const openOne = () =>
    new Promise((done) => {
      const ws = openSocket((kind, socket) => {
        if (kind === "connected") {
          sockets.push(socket);
          socket.on("close", () => (closedEarly += 1));
        } else failed += 1;
        done();
      });
    });
  const batch = 200;
  for (let i = 0; i < amount; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, amount - i) }, openOne));
  }
  console.log(`OPENED ${sockets.length}`);
  await new Promise((done) => setTimeout(done, seconds * 1000));
  const stillOpen = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  console.log(JSON.stringify({ opened: sockets.length, failed, still_open: stillOpen, closed_early: closedEarly }));
  for (const ws of sockets) ws.terminate();
}

// One connect to namespace "/": its outcome. It leaves as socket.io-client does
// (namespace, then Engine.IO close), so the server can forget the session at once.
function connectOnce(from, address) {
  return new Promise((done) => {
    let settled = false;
    const settle = (kind, socket) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (socket.readyState === WebSocket.OPEN) {
        if (kind === "connected") socket.send("41");
        socket.send("1");
      }
      socket.terminate();
      done(kind);
    };
    const ws = openSocket(settle, from, address);
    const timer = setTimeout(() => settle("error", ws), 10_000);
  });
}

function send(method, url, body, agent, from) {
  return new Promise((done, fail) => {
    const headers = { origin: from };
    if (body !== null) headers["content-type"] = "text/plain;charset=UTF-8";
    const request = http.request(url, { method, agent, headers }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () =>
        done({ status: response.statusCode, text: Buffer.concat(chunks).toString() }),
      );
    });
    request.on("error", fail);
    request.end(body ?? undefined);
  });
}

// One connect over long-polling, on one keep-alive connection as a browser tab would.
async function pollingConnectOnce(from, address) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress: address });
  try {
    const opened = await send("GET", pollingEndpoint, null, agent, from);
    const early = { 403: "refused", 429: "limited" }[opened.status];
    if (early) return early;
    if (opened.status !== 200 || !opened.text.startsWith("0")) {
      serverErrors.push(opened.status);
      return "error";
    }
    const session = `${pollingEndpoint}&sid=${JSON.parse(opened.text.slice(1)).sid}`;
    await send("POST", session, "40", agent, from);
    for (let reads = 0; reads < 5; reads += 1) {
      const answer = await send("GET", session, null, agent, from);
      for (const packet of answer.text.split("\x1e")) {
        if (packet.startsWith("40") || packet.startsWith("44")) {
          const kind = packet.startsWith("40") ? "connected" : "refused";
          await send("POST", session, kind === "connected" ? "41\x1e1" : "1", agent, from);
          return kind;
        }
      }
    }
    return "error";
  } catch {
    return "error";
  } finally {
    agent.destroy();
  }
}

async function echoMode() {
  const payload = "x".repeat(Number(process.env.PAYLOAD || 100));
  const sockets = [];
  for (let i = 0; i < amount; i += 1) {
    const socket = await new Promise((done) => {
      openSocket((kind, opened) => done(kind === "connected" ? opened : null));
    });
    if (socket === null) throw new Error("a socket for the echo run was not welcomed");
    sockets.push(socket);
  }
  let acks = 0;
  let wrong = 0;
  // COUNT=n: exactly n echoes in all, however long they take (bench/instructions.py).
  let remaining = Number(process.env.COUNT || Infinity);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const loop = (ws) =>
    new Promise((done) => {
      let id = 0;
      const next = () => {
        if (performance.now() >= deadline || remaining <= 0) return done();
        remaining -= 1;
        id += 1;
        ws.send(`42${id}["echo","${payload}"]`);
      };
      ws.on("message", (raw) => {
        const text = raw.toString();
        if (!text.startsWith(`43${id}[`)) return;
        if (text.length !== `43${id}["${payload}"]`.length) wrong += 1;
        acks += 1;
        next();
      });
      next();
    });
  await Promise.all(sockets.map(loop));
  const elapsed = (performance.now() - started) / 1000;
  for (const ws of sockets) ws.terminate();
  console.log(JSON.stringify({ acks, wrong, seconds: elapsed, rate: acks / elapsed, bytes: payload.length }));
}

async function mixedMode() {
  const [allowed, refused] = origin.split(",");
  const total = Number(secondsText);
  const counts = { connected: 0, refused: 0, limited: 0, error: 0, wrong: 0 };
  let next = 0;
  const started = performance.now();
  const worker = async (index) => {
    const address = `127.0.0.${2 + (index % 250)}`;
    while (next < total) {
      const n = next++;
      const from = n % 2 === 0 ? allowed : refused;
      const kind = await connectOnce(from, address);
      counts[kind] += 1;
      const expected = from === allowed ? "connected" : "refused";
      if ((kind === "connected" || kind === "refused") && kind !== expected) counts.wrong += 1;
    }
  };
  await Promise.all(Array.from({ length: amount }, (_, i) => worker(i)));
  const elapsed = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ ...counts, total, seconds: elapsed, server_errors: serverErrors }));
}

const modes = { hold: holdMode, mixed: mixedMode, connect: connectMode, echo: echoMode };
await modes[mode]();
process.exit(0);
