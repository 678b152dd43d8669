// The only module that touches socket.io: send(type, payload) -> Promise<ack>, on(type, fn).
// It also keeps this tab's session key (sessionStorage: a reload finds it, another tab
// does not) and offers it, with the last seq the page applied, on every (re)connect, so
// the server hands back the same session and resends what followed (docs/protocol.md).
import { io } from "../vendor/socket.io.esm.min.js";

const ACK_TIMEOUT_MS = 15000;
const KEY_ITEM = "gunyah.session-key";
const listeners = new Map();
let socket = null;
let appliedSeq = () => -1;

function dispatch(type, data, ack = null) {
  for (const fn of listeners.get(type) ?? []) fn(data, ack);
}

function storage() {
  try { return window.sessionStorage; } catch { return null; } // blocked storage: no resume
}

/** Remember the session key the server gave this tab (from the sim:hello ack). */
export function keepSession(key) {
  if (key) storage()?.setItem(KEY_ITEM, key);
  else storage()?.removeItem(KEY_ITEM);
}

/** The connect `auth` payload: resume this tab's session from the last applied seq. */
function resumeAuth(cb) {
  const key = storage()?.getItem(KEY_ITEM);
  cb(key ? { resume: key, seq: Math.max(-1, appliedSeq()) } : {});
}

/** Connect once; server events and connect/disconnect/connect_error go to the `on`
 *  listeners. `lastApplied()` is the seq of the last event the page has applied. */
export function connect(lastApplied = () => -1) {
  if (socket) return;
  appliedSeq = lastApplied;
  socket = io({ transports: ["websocket", "polling"], reconnectionDelayMax: 2000, auth: resumeAuth });
  socket.on("connect", () => dispatch("connect", null));
  socket.on("disconnect", (reason) => dispatch("disconnect", reason));
  socket.io.on("reconnect_attempt", (attempt) => dispatch("reconnect_attempt", attempt));
  // A refusal carries the server's structured error (e.g. TOO_MANY_CONNECTIONS) in data.
  socket.on("connect_error", (err) => dispatch("connect_error",
    err?.data?.code ? err.data : { code: "OFFLINE", message: err?.message ?? "cannot connect" }));
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
    if (!socket?.connected) { // say so at once, rather than a timeout 15 s later
      resolve({ ok: false, error: { code: "OFFLINE", message: "not sent: the server is not answering" } });
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
