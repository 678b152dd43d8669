// The only module that touches socket.io: send(type, payload) -> Promise<ack>, on(type, fn).
import { io } from "../vendor/socket.io.esm.min.js";

const ACK_TIMEOUT_MS = 15000;
const listeners = new Map();
let socket = null;

function dispatch(type, data, ack = null) {
  for (const fn of listeners.get(type) ?? []) fn(data, ack);
}

/** Connect once; server events and connect/disconnect go to the `on` listeners. */
export function connect() {
  if (socket) return;
  socket = io({ transports: ["websocket", "polling"], reconnectionDelayMax: 2000 });
  socket.on("connect", () => dispatch("connect", null));
  socket.on("disconnect", (reason) => dispatch("disconnect", reason));
  // A server event that asks for an ack (flow-controlled sim:trace) hands the ack
  // function to the listener, which calls it once the batch is drawn.
  socket.onAny((type, data, ack) => {
    const fns = listeners.get(type);
    if (typeof ack === "function" && !fns?.length) ack();
    dispatch(type, data, typeof ack === "function" ? ack : null);
  });
}

/** Emit with an ack; resolves with the ack, or an error ack on timeout or no connection. */
export function send(type, payload = {}) {
  return new Promise((resolve) => {
    if (!socket) {
      resolve({ ok: false, error: { code: "OFFLINE", message: "not connected" } });
      return;
    }
    socket.timeout(ACK_TIMEOUT_MS).emit(type, payload, (err, ack) => {
      if (err) resolve({ ok: false, error: { code: "TIMEOUT", message: `${type}: no answer` } });
      else resolve(ack ?? { ok: false, error: { code: "NO_ACK", message: "empty ack" } });
    });
  });
}

export function on(type, fn) {
  if (!listeners.has(type)) listeners.set(type, []);
  listeners.get(type).push(fn);
}
