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
// LOCAL_ADDRESS=127.0.0.2 sends from that loopback address; LOCAL_ADDRESS=spread:N
// gives connect's worker i the address 127.0.N.(1 + i % 250), as many users. A
// handshake answered with HTTP 403 counts as refused, 429 as limited, any other
// status as an error.
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
  const worker = async (index) => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const outcome = await connectOnce(origin, addressFor(index));
      counts[outcome] += 1;
      if (outcome !== "error") latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: amount }, (_, i) => worker(i)));
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

const modes = { hold: holdMode, mixed: mixedMode, connect: connectMode };
await modes[mode]();
process.exit(0);
