// app.js: cometail's page. Glue between the HTTP API (docs/API.md), the live connection
// (conn.js), the filter (filter.js) and the virtual scroller (view.js).
//
// The model is a *window*: a contiguous run of one view's entries, in stream order, bounded
// to RETAIN entries. `headPrev` is the cursor to page further back (null at the file's first
// line). `tailComplete` says whether the window reaches the live end: while it does, live
// entries are appended; while it does not (far-away entries were dropped to bound memory),
// live entries wait in `pending` and are merged, de-duplicated by cursor, when the user comes
// back to the end. The connection holds its own cursor and never skips or repeats an entry.

import { Conn, Status } from "./conn.js";
import { Filter, checkSpec } from "./filter.js";
import { parsed } from "./ansi.js";
import { LogView, buildText } from "./view.js";

const RETAIN = 100000; // entries kept in memory per view
const SLACK = 10000; // trim in chunks, not on every append
const PENDING_MAX = 50000;
const INITIAL = 1000; // `last=` on open
const PAGE = 5000; // history and catch-up page size
const STREAMS_POLL_MS = 3000;

const $ = (id) => document.getElementById(id);
const els = {
  log: $("log"),
  spacer: $("spacer"),
  q: $("q"),
  re: $("re"),
  cs: $("cs"),
  ferr: $("ferr"),
  status: $("status"),
  statusText: $("status-text"),
  wrap: $("wrap"),
  theme: $("theme"),
  streams: $("streams"),
  newlines: $("newlines"),
  title: $("title"),
  menu: $("menu"),
  picker: $("picker"),
  toast: $("toast"),
  top: $("top-note"),
};

const state = {
  streams: [], // from /api/streams
  byId: new Map(),
  view: [], // stream ids shown
  unread: new Map(),
  conn: null,
  bg: null,
  filter: null,
  filterGen: 0,
  following: true,
  newCount: 0,
  linked: null, // cursor from the URL hash
};

let win = null; // the window, see the file comment
let seqHi = 0;
let seqLo = 0;

function newWindow(ids) {
  return {
    ids,
    merged: ids.length > 1,
    entries: [],
    headPrev: null,
    tailComplete: true,
    pending: [],
    pendingEpoch: 0,
    loadingHead: false,
    loadingTail: false,
    token: {}, // identity of this view; stale fetches compare against it
  };
}

function stamp(e, stream) {
  if (stream) e.stream = stream;
  return e;
}

// ---------------------------------------------------------------- API

async function api(path, signalToken) {
  const r = await fetch(path, { cache: "no-store" });
  let body = null;
  try {
    body = await r.json();
  } catch {
    body = null;
  }
  if (!r.ok) throw new Error((body && body.error) || `HTTP ${r.status}`);
  if (signalToken && win && signalToken !== win.token) throw new StaleError();
  return body;
}

class StaleError extends Error {}

function linesUrl(id, params) {
  const q = new URLSearchParams(params);
  return `/api/streams/${encodeURIComponent(id)}/lines?${q}`;
}

// ---------------------------------------------------------------- rows & rendering

const view = new LogView(els.log, els.spacer, {
  build: buildRow,
  onScroll,
  labelCols: () => (win && win.merged ? labelWidth() : 0),
});

function labelWidth() {
  let w = 4;
  for (const id of win.ids) w = Math.max(w, Math.min(16, id.length));
  return w + 2;
}

const fmtTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  fractionalSecondDigits: 3,
  hour12: false,
});

function streamColour(id) {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 8;
}

function buildRow(e) {
  const row = document.createElement("div");
  row.className = "row";
  row.entry = e;
  if (win.merged && e.stream) {
    const l = document.createElement("span");
    l.className = `lbl c${streamColour(e.stream)}`;
    l.textContent = e.stream;
    l.style.width = `${labelWidth()}ch`;
    row.appendChild(l);
  }
  const t = document.createElement("span");
  t.className = "txt";
  const p = parsed(e);
  if (e.notice !== undefined) {
    row.classList.add("marker", `m-${e.notice}`);
    t.textContent = p.plain;
  } else {
    const ranges = state.filter && state.filter.active && e.fg === state.filter.gen ? e.fm : null;
    buildText(t, p.plain, p.segs, ranges);
    if (e.truncated) {
      const s = document.createElement("span");
      s.className = "more";
      s.textContent = " [line cut at the server's --max-line-bytes]";
      t.appendChild(s);
    }
  }
  row.appendChild(t);
  if (e.cursor && state.linked && e.cursor === state.linked) row.classList.add("linked");
  return row;
}

let dirty = false;
let rowsDirty = false;
let keepAnchor = false;
function schedule(rows, anchor) {
  if (rows) rowsDirty = true;
  if (anchor) keepAnchor = true;
  if (dirty) return;
  dirty = true;
  requestAnimationFrame(flush);
}

function flush() {
  dirty = false;
  if (!win) return;
  if (rowsDirty) {
    rowsDirty = false;
    const f = state.filter;
    const rows = f && f.active ? win.entries.filter((e) => f.shows(e)) : win.entries;
    const anchor = keepAnchor && !state.following;
    keepAnchor = false;
    view.setRows(rows, anchor);
  }
  if (state.following) view.scrollToBottom();
  else {
    view.render();
    maybeLoadMore();
  }
  updateNewLines();
}

function updateNewLines() {
  const show = !state.following && (state.newCount > 0 || !win.tailComplete);
  els.newlines.hidden = !show;
  if (show) {
    els.newlines.textContent =
      state.newCount > 0
        ? `↓ ${state.newCount.toLocaleString()} new line${state.newCount === 1 ? "" : "s"}`
        : "↓ jump to end";
  }
  renderPicker();
}

// Following stops only when the view moved *up* from where we last put it: scroll events
// arrive a frame late, when more lines may already have grown the log, so "not at the bottom"
// alone would pause a fast stream by itself.
function onScroll() {
  if (!win) return;
  if (state.following) {
    if (view.pos < view.lastSet - 2) {
      state.following = false;
      updateNewLines();
    }
  } else if (view.atBottom() && win.tailComplete) {
    state.following = true;
    state.newCount = 0;
    updateNewLines();
  }
  showTopNote();
  maybeLoadMore();
}

function maybeLoadMore() {
  if (!win || !view.rows.length) return;
  // Paused, so reading the real position is affordable; the cached one can lag a scroll
  // event behind, and a wheel at scrollTop 0 fires no scroll event at all.
  view.pos = els.log.scrollTop;
  if (performance.now() - (win.failedAt || -1e9) < 2000) return; // a fetch just failed
  const screen = view.viewH;
  if (view.pos < screen * 2 && win.headPrev && !win.loadingHead) loadOlder();
  if (!win.tailComplete && !win.loadingTail && view.total() - (view.pos + screen) < screen * 2) {
    loadNewer();
  }
}

// ---------------------------------------------------------------- the window

function addEntries(entries, where) {
  if (!entries.length) return;
  if (where === "front") {
    for (let i = entries.length - 1; i >= 0; i--) entries[i].seq = --seqLo;
    win.entries = entries.concat(win.entries);
  } else {
    for (const e of entries) e.seq = ++seqHi;
    if (entries.length > 2000) win.entries = win.entries.concat(entries);
    else for (const e of entries) win.entries.push(e);
  }
  if (state.filter) state.filter.evaluate(entries);
}

function firstCursor() {
  for (const e of win.entries) if (e.cursor) return e.cursor;
  return null;
}

function lastCursor() {
  for (let i = win.entries.length - 1; i >= 0; i--) if (win.entries[i].cursor) return win.entries[i].cursor;
  return null;
}

/** Keep at most RETAIN entries, dropping the side away from what is on screen. */
function trim(preferFront) {
  const over = win.entries.length - RETAIN;
  if (over <= SLACK && !(over > 0 && preferFront === "force")) return;
  const [a] = view.range();
  const shownSeq = view.rows[a] ? view.rows[a].seq : seqHi;
  const mid = win.entries[Math.floor(win.entries.length / 2)].seq;
  const dropFront = state.following || (preferFront !== "back" && shownSeq >= mid);
  if (dropFront) {
    win.entries = win.entries.slice(over);
    if (!win.merged) win.headPrev = firstCursor();
    showTopNote();
  } else {
    win.entries = win.entries.slice(0, win.entries.length - over);
    if (win.tailComplete) {
      win.tailComplete = false;
      win.pending = [];
    }
  }
  schedule(true, true);
}

function onLive(stream, entries) {
  if (!win || !win.ids.includes(stream)) return;
  const es = win.merged ? entries.map((e) => stamp(e, stream)) : entries;
  if (!state.following) state.newCount += es.length;
  if (win.tailComplete) {
    addEntries(es, "back");
    trim();
  } else {
    for (const e of es) win.pending.push(e);
    if (win.pending.length > PENDING_MAX) {
      // Too much to hold: forget it, the catch-up fetch re-reads it from the file.
      win.pending = [];
      win.pendingEpoch++;
    }
  }
  schedule(true);
}

/** Merge `pending` after a catch-up page that reached the end of the file. */
function finishCatchUp(fetched) {
  const seen = new Set(fetched.map((e) => e.cursor));
  const rest = win.pending.filter((e) => !e.cursor || !seen.has(e.cursor));
  win.pending = [];
  win.tailComplete = true;
  addEntries(rest, "back");
}

async function loadOlder() {
  const w = win;
  const before = firstCursor();
  if (!before || w.merged) return;
  w.loadingHead = true;
  try {
    const d = await api(linesUrl(w.ids[0], { before, limit: PAGE }), w.token);
    if (firstCursor() !== before) return; // the window moved meanwhile
    addEntries(d.entries.map((e) => stamp(e)), "front");
    w.headPrev = d.prev;
    showTopNote();
    schedule(true, true);
    trim("back");
  } catch (e) {
    if (!(e instanceof StaleError)) {
      w.failedAt = performance.now();
      toast(`history: ${e.message}`);
    }
  } finally {
    w.loadingHead = false;
    schedule(); // still at the top (or the window moved): the next flush looks again
  }
}

async function loadNewer() {
  const w = win;
  const after = lastCursor();
  if (!after || w.merged) return;
  w.loadingTail = true;
  const epoch = w.pendingEpoch;
  try {
    const d = await api(linesUrl(w.ids[0], { after, limit: PAGE }), w.token);
    if (lastCursor() !== after || w.tailComplete) return;
    const got = d.entries.map((e) => stamp(e));
    addEntries(got, "back");
    if (got.length < PAGE && epoch === w.pendingEpoch) finishCatchUp(got);
    schedule(true, true);
    trim("front");
  } catch (e) {
    if (!(e instanceof StaleError)) {
      w.failedAt = performance.now();
      toast(`catch-up: ${e.message}`);
    }
  } finally {
    w.loadingTail = false;
    schedule();
  }
}

/** The note floating at the top of the log while the view is near its top. */
function showTopNote() {
  if (!win) return;
  let text = "";
  if (win.merged) text = "merged view · open a single stream to page through its earlier history";
  else if (win.headPrev === null && win.entries.length) text = "start of file";
  else if (win.headPrev) text = "loading earlier lines…";
  if (els.top.textContent !== text) els.top.textContent = text;
  const near = view.pos < view.rowH * 3 && view.rows.length > 0;
  els.top.hidden = !text || !near;
}

/** Open a view of `ids` (one stream, or several merged). */
async function openView(ids, opts = {}) {
  if (state.conn) state.conn.close();
  state.conn = null;
  win = newWindow(ids);
  const w = win;
  state.following = true;
  state.newCount = 0;
  for (const id of ids) state.unread.set(id, 0);
  view.clear();
  view.setRows([], false);
  els.title.textContent = ids.length > 1 ? `${ids.length} streams merged` : (state.byId.get(ids[0]) || { name: ids[0] }).name;
  document.title = ids.length > 1 ? `cometail: ${ids.join(", ")}` : `cometail: ${ids[0]}`;
  renderPicker();
  const cursors = new Map();
  try {
    if (!w.merged && opts.linked) {
      await openAround(w, ids[0], opts.linked, cursors);
    } else {
      const parts = await Promise.all(ids.map((id) => api(linesUrl(id, { last: INITIAL }), w.token)));
      let all = [];
      parts.forEach((d, k) => {
        cursors.set(ids[k], d.next || lastOf(d.entries));
        all = all.concat(d.entries.map((e) => stamp(e, w.merged ? ids[k] : null)));
      });
      if (w.merged) {
        // History has no arrival times: keep each stream's history together, then timed ones.
        const untimed = all.filter((e) => !e.time);
        const timed = all.filter((e) => e.time).sort((a, b) => a.time - b.time);
        all = untimed.concat(timed);
        w.headPrev = null;
      } else w.headPrev = parts[0].prev;
      addEntries(all, "back");
    }
  } catch (e) {
    if (e instanceof StaleError) return;
    toast(`could not load: ${e.message}`);
    for (const id of ids) if (!cursors.has(id)) cursors.set(id, null);
  }
  if (w !== win) return;
  showTopNote();
  schedule(true);
  startConn(w, cursors);
  restartBackground();
}

function lastOf(entries) {
  return entries.length ? entries[entries.length - 1].cursor : null;
}

/** Load the entries around a linked cursor; the window then does not reach the live end. */
async function openAround(w, id, c, cursors) {
  const tail = await api(linesUrl(id, { last: 1 }), w.token);
  cursors.set(id, tail.next || lastOf(tail.entries));
  let head;
  let after = await api(linesUrl(id, { after: c, limit: 500 }), w.token);
  if (after.entries.length) {
    head = await api(linesUrl(id, { before: after.entries[0].cursor, limit: 500 }), w.token);
  } else {
    head = await api(linesUrl(id, { last: 500 }), w.token);
    after = { entries: [] };
  }
  w.headPrev = head.prev;
  addEntries(head.entries.concat(after.entries), "back");
  // Whatever was appended after the cursor we took for the connection arrives live (pending).
  w.tailComplete = false;
  state.following = false;
  const i = w.entries.findIndex((e) => e.cursor === c);
  if (i < 0) toast("that line is no longer available");
  state.pendingJump = i >= 0 ? w.entries[i] : null;
}

function startConn(w, cursors) {
  state.conn = new Conn({
    streams: w.ids,
    cursors,
    forcePoll: new URLSearchParams(location.search).get("transport") === "poll",
    onEntries: onLive,
    onStatus: setStatus,
  });
  state.conn.start();
  if (state.pendingJump) {
    const e = state.pendingJump;
    state.pendingJump = null;
    flush();
    const i = view.rows.indexOf(e);
    if (i >= 0) view.scrollToIndex(i);
  }
}

/** Counts unread lines of the streams not in view. */
function restartBackground() {
  const others = state.streams.map((s) => s.id).filter((id) => !win || !win.ids.includes(id));
  const prev = state.bg;
  if (prev && others.join(",") === prev.streams.join(",")) return;
  if (prev) prev.close();
  state.bg = null;
  if (!others.length) return;
  const cursors = new Map(others.map((id) => [id, prev ? prev.cursors.get(id) || null : null]));
  state.bg = new Conn({
    streams: others,
    cursors,
    onEntries: (s, es) => {
      state.unread.set(s, (state.unread.get(s) || 0) + es.filter((e) => e.text !== undefined).length);
      renderPicker();
    },
    onStatus: () => {},
  });
  state.bg.start();
}

// ---------------------------------------------------------------- status, picker, toasts

const STATUS_TEXT = {
  [Status.CONNECTING]: "connecting…",
  [Status.SSE]: "live · SSE",
  [Status.POLL]: "live · long polling",
  [Status.RECONNECTING]: "reconnecting…",
  [Status.OFFLINE]: "offline",
};

function setStatus(s, detail) {
  els.status.dataset.state = s;
  els.statusText.textContent = STATUS_TEXT[s] || s;
  els.status.title = detail || STATUS_TEXT[s] || s;
}

let toastTimer = 0;
function toast(msg) {
  els.toast.textContent = msg;
  els.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    els.toast.hidden = true;
  }, 4000);
}

function renderPicker() {
  const ul = els.streams;
  const have = new Map([...ul.children].map((li) => [li.dataset.id, li]));
  const keep = new Set();
  for (const s of state.streams) {
    keep.add(s.id);
    let li = have.get(s.id);
    if (!li) {
      li = document.createElement("li");
      li.dataset.id = s.id;
      const cb = document.createElement("input");
      cb.type = "checkbox";
      cb.title = "include in the merged view";
      cb.setAttribute("aria-label", `show ${s.id} in the merged view`);
      const name = document.createElement("button");
      name.type = "button";
      name.className = "sname";
      const dot = document.createElement("i");
      dot.className = "dot";
      const label = document.createElement("span");
      label.className = "sid";
      name.append(dot, label);
      const badge = document.createElement("span");
      badge.className = "badge";
      const why = document.createElement("div");
      why.className = "why";
      li.append(cb, name, badge, why);
      ul.appendChild(li);
    }
    const inView = !!win && win.ids.includes(s.id);
    li.classList.toggle("current", inView);
    li.dataset.state = s.state;
    li.querySelector("input").checked = inView;
    li.querySelector(".sid").textContent = s.id;
    li.querySelector(".sname").title = `${s.name} (${s.state}${s.reason ? `: ${s.reason}` : ""})`;
    const why = li.querySelector(".why");
    why.textContent = s.state === "following" ? "" : `${s.state}${s.reason ? `: ${s.reason}` : ""}`;
    const n = inView ? (state.following ? 0 : state.newCount) : state.unread.get(s.id) || 0;
    const badge = li.querySelector(".badge");
    badge.textContent = n ? (n > 9999 ? "9999+" : String(n)) : "";
    badge.hidden = !n;
  }
  for (const [id, li] of have) if (!keep.has(id)) li.remove();
}

els.streams.addEventListener("click", (ev) => {
  const li = ev.target.closest("li");
  if (!li) return;
  const id = li.dataset.id;
  if (ev.target.matches("input")) {
    const ids = new Set(win ? win.ids : []);
    if (ev.target.checked) ids.add(id);
    else if (ids.size > 1) ids.delete(id);
    else {
      ev.target.checked = true;
      return;
    }
    const order = state.streams.map((s) => s.id).filter((x) => ids.has(x));
    navigate(order);
  } else if (ev.target.closest(".sname")) {
    navigate([id]);
    document.body.classList.remove("picker-open");
  }
});

els.menu.addEventListener("click", () => document.body.classList.toggle("picker-open"));

async function pollStreams() {
  try {
    const d = await api("/api/streams");
    const old = state.byId;
    state.streams = d.streams;
    state.byId = new Map(d.streams.map((s) => [s.id, s]));
    // A viewed stream that lost its file (or errs) gets an inline marker row.
    if (win) {
      for (const s of d.streams) {
        const was = old.get(s.id);
        if (win.ids.includes(s.id) && was && was.state !== s.state && s.state !== "following") {
          const m = stamp({ notice: s.state, detail: s.reason || "", local: true }, win.merged ? s.id : null);
          if (win.tailComplete) addEntries([m], "back");
          else win.pending.push(m);
          schedule(true);
        }
      }
    }
    renderPicker();
    if (win) restartBackground();
    return d.streams;
  } catch (e) {
    return null;
  } finally {
    setTimeout(pollStreams, STREAMS_POLL_MS);
  }
}

// ---------------------------------------------------------------- filter

function currentSpec() {
  return { q: els.q.value, re: els.re.getAttribute("aria-pressed") === "true", cs: els.cs.getAttribute("aria-pressed") === "true" };
}

function applyFilter() {
  const spec = currentSpec();
  if (state.filter) state.filter.dispose();
  state.filter = null;
  const chk = checkSpec(spec);
  els.ferr.textContent = chk.error || "";
  els.ferr.hidden = !chk.error;
  els.q.classList.toggle("bad", !!chk.error);
  if (spec.q && !chk.error) {
    const f = new Filter(spec, ++state.filterGen, () => schedule(true), (why) => {
      if (state.filter !== f) return;
      els.ferr.textContent = `${why}; filter off`;
      els.ferr.hidden = false;
      els.q.classList.add("bad");
      state.filter = null;
      view.gen++;
      schedule(true, true);
    });
    state.filter = f;
    if (win) f.evaluate(win.entries);
  }
  view.gen++;
  schedule(true, true);
  writeUrl();
}

let filterTimer = 0;
els.q.addEventListener("input", () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(applyFilter, 120);
});
for (const b of [els.re, els.cs]) {
  b.addEventListener("click", () => {
    b.setAttribute("aria-pressed", b.getAttribute("aria-pressed") === "true" ? "false" : "true");
    applyFilter();
  });
}

// ---------------------------------------------------------------- URL, theme, wrap, keys

function writeUrl() {
  const q = new URLSearchParams(location.search);
  const spec = currentSpec();
  if (win) q.set("s", win.ids.join(","));
  for (const [k, v] of [["q", spec.q], ["re", spec.re ? "1" : ""], ["cs", spec.cs ? "1" : ""]]) {
    if (v) q.set(k, v);
    else q.delete(k);
  }
  const hash = state.linked ? `#${state.linked}` : "";
  history.replaceState(null, "", `${location.pathname}?${q}${hash}`);
}

function navigate(ids) {
  state.linked = null;
  openView(ids);
  writeUrl();
}

function setTheme(t) {
  document.documentElement.dataset.theme = t;
  els.theme.setAttribute("aria-label", `theme: ${t} (switch)`);
  els.theme.title = `theme: ${t} (click to switch)`;
}

function currentTheme() {
  return document.documentElement.dataset.theme || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
}

els.theme.addEventListener("click", () => {
  const t = currentTheme() === "dark" ? "light" : "dark";
  setTheme(t);
  try {
    localStorage.setItem("cometail.theme", t);
  } catch {
    /* storage may be disabled */
  }
});

function setWrap(on) {
  els.wrap.setAttribute("aria-pressed", String(on));
  view.setWrap(on);
  if (state.following) view.scrollToBottom();
}

els.wrap.addEventListener("click", () => {
  const on = els.wrap.getAttribute("aria-pressed") !== "true";
  setWrap(on);
  try {
    localStorage.setItem("cometail.wrap", on ? "1" : "0");
  } catch {
    /* storage may be disabled */
  }
});

function follow() {
  state.newCount = 0;
  if (!win) return;
  if (!win.tailComplete) {
    // Reload the end of the file, then merge what arrived live meanwhile.
    const w = win;
    const epoch = w.pendingEpoch;
    api(linesUrl(w.ids[0], { last: INITIAL }), w.token)
      .then((d) => {
        if (w !== win || w.tailComplete) return;
        if (epoch !== w.pendingEpoch) return follow();
        w.entries = [];
        w.headPrev = d.prev;
        const got = d.entries.map((e) => stamp(e));
        addEntries(got, "back");
        finishCatchUp(got);
        state.following = true;
        showTopNote();
        schedule(true);
      })
      .catch((e) => toast(`jump to end: ${e.message}`));
    return;
  }
  state.following = true;
  view.scrollToBottom();
  updateNewLines();
}

/** Page back to the first line of the file (dropping what does not fit), then show it. */
async function toStart() {
  if (!win) return;
  state.following = false;
  if (win.merged || win.headPrev === null) {
    view.scrollTo(0);
    onScroll();
    return;
  }
  const w = win;
  toast("paging back to the start of the file…");
  w.loadingHead = true;
  try {
    let before = firstCursor();
    let chunks = [];
    let count = 0;
    let prev = w.headPrev;
    while (prev) {
      const d = await api(linesUrl(w.ids[0], { before, limit: 10000 }), w.token);
      chunks.unshift(d.entries.map((e) => stamp(e)));
      count += d.entries.length;
      while (count - chunks[chunks.length - 1].length >= RETAIN) count -= chunks.pop().length;
      prev = d.prev;
      if (!d.entries.length) break;
      before = d.entries[0].cursor;
    }
    const older = chunks.flat();
    addEntries(older, "front");
    w.headPrev = prev || null;
    trim("back");
    showTopNote();
    flush();
    view.scrollTo(0);
    onScroll();
  } catch (e) {
    if (!(e instanceof StaleError)) toast(`start of file: ${e.message}`);
  } finally {
    w.loadingHead = false;
  }
}

els.newlines.addEventListener("click", follow);

document.addEventListener("keydown", (ev) => {
  const typing = ev.target instanceof HTMLInputElement || ev.target instanceof HTMLTextAreaElement;
  if (ev.key === "Escape") {
    if (els.q.value) {
      els.q.value = "";
      applyFilter();
    }
    if (typing) els.q.blur();
    document.body.classList.remove("picker-open");
    return;
  }
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "/") {
    ev.preventDefault();
    els.q.focus();
    els.q.select();
  } else if (ev.key === "End" || ev.key === "G") {
    ev.preventDefault();
    follow();
  } else if (ev.key === "Home" || ev.key === "g") {
    ev.preventDefault();
    toStart();
  }
});

const copyButton = document.createElement("button");
copyButton.className = "cp";
copyButton.type = "button";
copyButton.title = "copy line";
copyButton.setAttribute("aria-label", "copy line");
copyButton.textContent = "⧉";

// The tooltip (arrival time) is built on first hover, not for every row drawn.
els.log.addEventListener("mouseover", (ev) => {
  const row = ev.target.closest(".row");
  if (!row || !row.entry) return;
  // One copy button for the whole log, moved into the row under the pointer.
  if (copyButton.parentNode !== row) row.appendChild(copyButton);
  if (row.title) return;
  const e = row.entry;
  const tip = [];
  if (e.time) tip.push(`arrived ${fmtTime.format(new Date(e.time))}`);
  if (e.cursor && !win.merged) tip.push("click: link to this line");
  if (tip.length) row.title = tip.join(" · ");
});

// Click a line: link to it. The copy button copies the whole line.
els.log.addEventListener("click", (ev) => {
  const row = ev.target.closest(".row");
  if (!row || !row.entry) return;
  const e = row.entry;
  if (ev.target.closest(".cp")) {
    copyText(parsed(e).plain);
    return;
  }
  const sel = getSelection();
  if (sel && !sel.isCollapsed) return; // the user is selecting text
  if (!e.cursor || win.merged) return;
  state.linked = e.cursor;
  for (const el of els.spacer.querySelectorAll(".row.linked")) el.classList.remove("linked");
  row.classList.add("linked");
  writeUrl();
});

async function copyText(s) {
  try {
    await navigator.clipboard.writeText(s);
    toast("line copied");
  } catch {
    const ta = document.createElement("textarea");
    ta.value = s;
    ta.className = "offscreen";
    document.body.appendChild(ta);
    ta.select();
    const ok = document.execCommand("copy");
    ta.remove();
    toast(ok ? "line copied" : "copy failed");
  }
}

addEventListener("hashchange", () => {
  const c = location.hash.slice(1);
  if (c && win && !win.merged && c !== state.linked) {
    state.linked = c;
    openView(win.ids, { linked: c });
  }
});

// A hidden tab gives its connections back after a while (browsers allow six HTTP/1.1
// connections per host across all tabs) and resumes from its cursors when shown again.
const HIDDEN_GRACE_MS = 30000;
let hiddenTimer = 0;
document.addEventListener("visibilitychange", () => {
  clearTimeout(hiddenTimer);
  if (document.hidden) {
    hiddenTimer = setTimeout(() => {
      if (state.conn) state.conn.disconnect("paused while the tab is hidden");
      if (state.bg) state.bg.disconnect("paused while the tab is hidden");
    }, HIDDEN_GRACE_MS);
  } else {
    if (state.conn && state.conn.paused) state.conn.resume();
    if (state.bg && state.bg.paused) state.bg.resume();
  }
});

// ---------------------------------------------------------------- debug hooks (tests)

window.__cometail = {
  disconnect: () => state.conn && state.conn.disconnect(),
  reconnect: () => state.conn && state.conn.resume(),
  status: () => (state.conn ? state.conn.status : null),
  retained: () => (win ? win.entries.length : 0),
  rowsInDom: () => els.spacer.querySelectorAll(".row").length,
  following: () => state.following,
  view: () => (win ? win.ids.slice() : []),
  texts: () => (win ? win.entries.filter((e) => e.text !== undefined).map((e) => e.text) : []),
  entries: () => (win ? win.entries.map((e) => (e.notice !== undefined ? `M:${e.notice}` : e.text)) : []),
  atStart: () => !!win && win.headPrev === null,
  busy: () => dirty || (!!win && (win.loadingHead || win.loadingTail)),
  cursorOf: (text) => {
    const e = win && win.entries.find((x) => x.text === text);
    return e ? e.cursor : null;
  },
};

// ---------------------------------------------------------------- start

async function main() {
  let t = null;
  try {
    t = localStorage.getItem("cometail.theme");
  } catch {
    t = null;
  }
  // Without a stored choice the theme follows prefers-color-scheme (live, through CSS).
  if (t === "dark" || t === "light") setTheme(t);
  else els.theme.title = "theme: as the system (click to switch)";
  // Wrapping defaults to on for narrow (phone) screens, off otherwise.
  let wrap = matchMedia("(max-width: 720px)").matches;
  try {
    const w = localStorage.getItem("cometail.wrap");
    if (w !== null) wrap = w === "1";
  } catch {
    /* storage may be disabled */
  }
  if (wrap) setWrap(true);

  const q = new URLSearchParams(location.search);
  els.q.value = q.get("q") || "";
  els.re.setAttribute("aria-pressed", String(q.get("re") === "1"));
  els.cs.setAttribute("aria-pressed", String(q.get("cs") === "1"));
  setStatus(Status.CONNECTING);
  const streams = await pollStreams();
  if (!streams) {
    setStatus(Status.OFFLINE, "cannot reach the server");
  }
  if (els.q.value) applyFilter();
  const want = (q.get("s") || "").split(",").filter((id) => state.byId.has(id));
  const ids = want.length ? want : state.streams.length ? [state.streams[0].id] : [];
  if (!ids.length) {
    els.top.textContent = "no streams yet: waiting for files to match";
    els.top.hidden = false;
    const wait = setInterval(() => {
      if (state.streams.length) {
        clearInterval(wait);
        navigate([state.streams[0].id]);
      }
    }, 500);
    return;
  }
  const linked = location.hash.slice(1) || null;
  state.linked = linked;
  await openView(ids, { linked: ids.length === 1 ? linked : null });
  writeUrl();
}

main();
