// live.js: where a tab gets its live entries. Through the browser's one shared connection
// (relay.js, a SharedWorker every tab of the page joins) where the browser has SharedWorker;
// else, or when asked (`own`), through a connection of the tab's own (conn.js).
//
// `connect` returns an object with Conn's interface (start, close, disconnect, resume,
// status, paused, streams, cursors), so the page does not care which it got. A shared
// subscription keeps its own cursors too: if the worker fails, it carries on over a
// connection of its own from where it stands.

import { Conn } from "./conn.js";

const ALIVE_MS = 20000; // tell the worker this tab is still there (see relay.js)
// A SharedWorker is shared by script URL *and* name: a tab of a newer page must not join a
// worker of an older one still running in the browser, so the name carries the version of the
// messages between them. Bump it whenever they change.
const RELAY_NAME = "cometail-relay/2";

let port = null; // null: not tried yet; false: no shared worker here
let nextId = 1;
const subs = new Map(); // id -> SharedConn

function relay() {
  if (port !== null) return port;
  port = false;
  if (typeof SharedWorker === "undefined") return port;
  let w;
  try {
    w = new SharedWorker("relay.js", { type: "module", name: RELAY_NAME });
  } catch {
    return port;
  }
  port = w.port;
  port.onmessage = (ev) => {
    const m = ev.data;
    if (m.t === "entries") {
      const sub = subs.get(m.sub);
      if (sub) sub.deliver(m.stream, m.entries);
    } else if (m.t === "status") {
      for (const sub of subs.values()) sub.setStatus(m.s, m.detail);
    }
  };
  w.onerror = () => {
    console.info("cometail: the shared connection failed; each view connects on its own");
    port = false;
    for (const sub of [...subs.values()]) sub.goOwn();
  };
  port.start();
  addEventListener("pagehide", () => {
    if (port) port.postMessage({ t: "bye" });
  });
  setInterval(() => {
    if (port) port.postMessage({ t: "alive" });
  }, ALIVE_MS);
  return port;
}

/** A subscription to the shared connection, with Conn's interface. */
class SharedConn {
  constructor(o) {
    this.o = o;
    this.streams = o.streams.slice();
    this.cursors = new Map(o.cursors);
    this.id = nextId++;
    this.shared = true;
    this.status = null;
    this.paused = false;
    this.closed = false;
    this.own = null; // the Conn it fell back to
  }

  start() {
    subs.set(this.id, this);
    port.postMessage({ t: "subscribe", id: this.id, streams: this.streams, q: this.o.q || "", cursors: Object.fromEntries(this.cursors) });
  }

  close() {
    this.closed = true;
    subs.delete(this.id);
    if (this.own) this.own.close();
    else if (port) port.postMessage({ t: "unsubscribe", id: this.id });
  }

  /** Test hook: drops the shared connection (every tab's) until `resume()`. */
  disconnect(why = "disconnected on request") {
    this.paused = true;
    if (this.own) this.own.disconnect(why);
    else port.postMessage({ t: "disconnect", why });
  }

  resume() {
    this.paused = false;
    if (this.own) this.own.resume();
    else port.postMessage({ t: "resume" });
  }

  deliver(stream, entries) {
    if (this.closed || !entries.length || !this.streams.includes(stream)) return;
    this.cursors.set(stream, entries[entries.length - 1].cursor);
    this.o.onEntries(stream, entries);
  }

  setStatus(s, detail) {
    if (this.status === s && this.detail === detail) return;
    this.status = s;
    this.detail = detail;
    this.o.onStatus(s, detail);
  }

  /** Carry on over a connection of its own, from the cursors held. */
  goOwn() {
    subs.delete(this.id);
    if (this.closed) return;
    this.shared = false;
    this.own = new Conn({ ...this.o, cursors: this.cursors, onEntries: (s, es) => this.deliver(s, es), onStatus: (s, d) => this.setStatus(s, d) });
    this.own.start();
  }
}

/**
 * A live connection for `o` (Conn's options): shared with the browser's other tabs unless
 * `own` (or long polling is forced, or the browser has no SharedWorker).
 */
export function connect(o, own) {
  if (own || o.forcePoll || !relay()) return new Conn(o);
  return new SharedConn(o);
}
