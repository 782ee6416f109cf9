// app.js: cometail's page, as wiring. The HTTP API is docs/API.md; each part of the page is a
// module that owns one idea:
//   window.js  the window of a view's entries (history pages, live entries, trimming, catch-up)
//   conn.js    a live connection (SSE, long polling, resume from its own cursors)
//   live.js    the tab's side of the one connection all tabs share (relay.js, a SharedWorker)
//   view.js    the virtual scroller
//   rows.js    a row's element and the pointer on rows (tooltip, copy, link)
//   picker.js  the stream list
//   filter.js  the line filter (regexes in a worker); filterbar.js its controls
//   query.js   the query box (`q`, filtered on the server) and the level chooser
//   fields.js  a JSON or logfmt line's message and fields
//   time.js    the time column's clock (local or UTC), go-to-time values, `#at=` links;
//              timebar.js its controls
//   url.js     the page's address, which holds the view
//   prefs.js   the theme and wrap choices, remembered
//   search.js  the whole-history search panel
// This file holds what joins them: which view is open (streams, query, time), whether the page
// follows the live end, the header's controls and keys.

import { Status } from "./conn.js";
import { downloadHref, saveEntries } from "./download.js";
import { connect } from "./live.js";
import { FilterBar } from "./filterbar.js";
import { themeButton, wrapButton } from "./prefs.js";
import { QueryBar, withTerm } from "./query.js";
import { parseAt } from "./time.js";
import { TimeBar } from "./timebar.js";
import { readView, viewUrl } from "./url.js";
import { LogView, isTextField } from "./view.js";
import { EntryWindow } from "./window.js";
import { Rows } from "./rows.js";
import { Picker } from "./picker.js";
import { SearchPanel } from "./search.js";

const INITIAL = 1000; // `last=` on open
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
  toast: $("toast"),
  top: $("top-note"),
  query: $("query"),
  levels: $("levels"),
  qerr: $("qerr"),
  tcol: $("tcol"),
  tz: $("tz"),
  goto: $("goto"),
  go: $("go"),
  dl: $("dl"),
};

const narrow = matchMedia("(max-width: 720px)");

const state = {
  streams: [], // from /api/streams
  byId: new Map(),
  unread: new Map(),
  conn: null,
  bg: null,
  following: true,
  newCount: 0,
  linked: null, // cursor from the URL hash
  jumped: null, // the entry a view was opened around, until the user scrolls
  q: "", // the server-side query of the open view
  at: null, // epoch ms the view was opened at (`#at=`), null when it was not
  atCursor: null, // the first entry at or after `at`, marked
};

let win = null; // the open view's EntryWindow

async function api(path) {
  const r = await fetch(path, { cache: "no-store" });
  let body = null;
  try {
    body = await r.json();
  } catch {
    body = null;
  }
  if (!r.ok) throw new Error((body && body.error) || `HTTP ${r.status}`);
  return body;
}

// ---------------------------------------------------------------- rows & rendering

const rows = new Rows(els.log, {
  labels: () => (win && win.merged ? win.ids : null),
  filter: () => bar.filter,
  linked: () => state.linked || state.atCursor,
  link: (cursor) => {
    state.linked = cursor;
    state.at = null;
    state.atCursor = null;
    writeUrl();
  },
  say: toast,
  clock: () => times.column(),
  short: () => narrow.matches,
  toggle: (e) => view.setOpen(e, !e.open),
  addTerm: (term) => query.set(withTerm(query.value(), term)),
  timeLink: (ms) => {
    state.linked = null;
    state.at = ms;
    state.atCursor = null;
    writeUrl();
    toast("the address now links to this time");
  },
});

const view = new LogView(els.log, els.spacer, {
  build: (e, prev) => rows.build(e, prev),
  onScroll,
  resized: onResized,
  prefixCols: () => rows.prefixCols(),
  display: (e) => rows.display(e),
  extraLines: (e) => rows.extraLines(e),
});

const query = new QueryBar({ input: els.query, levels: els.levels, err: els.qerr }, { changed: queryChanged });

const times = new TimeBar(
  { tcol: els.tcol, tz: els.tz, goto: els.goto, go: els.go },
  {
    changed: () => {
      view.invalidate();
      view.resized(true);
      schedule(true, true);
      writeUrl();
    },
    goTo,
    firstTime: () => {
      const e = view.firstDrawn();
      const ms = e && (e.ts !== undefined ? e.ts : e.time);
      return ms === undefined || ms === null ? null : ms;
    },
    say: toast,
  },
);
narrow.addEventListener("change", () => times.changed());

const picker = new Picker(els.streams, els.menu, navigate);

const bar = new FilterBar(
  { q: els.q, re: els.re, cs: els.cs, err: els.ferr },
  {
    entries: () => (win ? win.entries : []),
    changed: () => {
      view.invalidate();
      schedule(true, true);
      writeUrl();
    },
    decided: () => schedule(true),
  },
);

new SearchPanel({
  current: () => (win && !win.merged ? win.ids[0] : null),
  input: els.q,
  regex: () => els.re.getAttribute("aria-pressed") === "true",
});

let dirty = false;
let rowsDirty = false;
let keepAnchor = false;
function schedule(rowsChanged, anchor) {
  if (rowsChanged) rowsDirty = true;
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
    const f = bar.filter;
    const shown = f && f.active ? win.entries.filter((e) => f.shows(e)) : win.entries;
    const anchor = keepAnchor && !state.following;
    keepAnchor = false;
    // A view opened around a match keeps the match in view through a filter change (the
    // filter cleared while the jump loaded), until the user scrolls it away.
    const jumped = anchor && state.jumped && shown.includes(state.jumped) ? state.jumped : null;
    view.setRows(shown, anchor && !jumped);
    if (jumped) view.scrollToIndex(view.indexOf(jumped));
  }
  if (state.following) {
    view.scrollToBottom();
    // A query's page may hold less than a screen, even nothing (the scan stopped at its
    // budget): read further back, as scrolling up would, until the screen is full.
    if (win.q && !view.fills(2) && win.canLoadOlder()) win.loadOlder();
  } else {
    view.render();
    maybeLoadMore();
  }
  showTopNote();
  updateNewLines();
}

function updateNewLines() {
  const show = !state.following && (state.newCount > 0 || !win.reachesEnd());
  els.newlines.hidden = !show;
  if (show) {
    els.newlines.textContent =
      state.newCount > 0
        ? `↓ ${state.newCount.toLocaleString()} new line${state.newCount === 1 ? "" : "s"}`
        : "↓ jump to end";
  }
  renderPicker();
}

// Following is the user's choice: only the user scrolling (view.js tells which scrolls are the
// user's) or a key changes it. Any other scroll (the browser clamping scrollTop after a
// resize, a wrap toggle, rows changing height) leaves it as it is, and the end is pinned
// again. Following stops only when the view moved *up* from where we last put it: scroll
// events arrive a frame late, when more lines may already have grown the log, so "not at
// the bottom" alone would pause a fast stream by itself. A scroll off the end that no input
// announced pauses too (view.strayed); coming back to the end follows again only on input.
function onScroll(user) {
  if (!win) return;
  if (user) state.jumped = null;
  if (state.following) {
    if ((user && view.movedUp()) || (!user && view.strayed())) {
      state.following = false;
      updateNewLines();
    } else if (!user) schedule();
  } else if (user && view.atBottom() && win.reachesEnd()) {
    state.following = true;
    state.newCount = 0;
    updateNewLines();
  }
  showTopNote();
  maybeLoadMore();
}

/** The log's box changed size: the end stays in view while following. */
function onResized() {
  if (state.following) view.scrollToBottom();
}

function maybeLoadMore() {
  if (!win) return;
  if (!view.hasRows()) {
    if (win.q && win.canLoadOlder()) win.loadOlder(); // no match yet: search on back
    return;
  }
  // Paused, so reading the real position is affordable.
  view.syncPosition();
  if (view.nearTop(2) && win.canLoadOlder()) win.loadOlder();
  if (view.nearBottom(2) && win.canLoadNewer()) win.loadNewer();
}

/** The note floating at the top of the log while the view is near its top. */
function showTopNote() {
  if (!win) return;
  const text = win.topNote();
  if (els.top.textContent !== text) els.top.textContent = text;
  // An empty view shows its note only for a query ("no matches", "searching…").
  els.top.hidden = !text || (view.hasRows() ? !view.showsFirstRows(3) : !win.q);
}

// ---------------------------------------------------------------- views

/** Open a view of `ids` (one stream, or several merged). */
async function openView(ids, opts = {}) {
  if (state.conn) state.conn.close();
  state.conn = null;
  if (win) win.close();
  state.atCursor = null;
  const w = new EntryWindow(ids, {
    api,
    added: (entries) => {
      if (bar.filter) bar.filter.evaluate(entries);
    },
    changed: (anchor) => {
      // Entries added before the first row give it a new predecessor (its day mark).
      if (anchor) view.invalidate();
      schedule(true, anchor);
    },
    settled: () => schedule(), // the next flush looks whether another page is wanted
    following: () => state.following,
    shownSeq: () => {
      const e = view.firstDrawn();
      return e ? e.seq : null;
    },
    warn: toast,
  }, state.q);
  win = w;
  state.jumped = null;
  state.following = true;
  state.newCount = 0;
  for (const id of ids) state.unread.set(id, 0);
  view.clear();
  view.setRows([], false);
  els.title.textContent = ids.length > 1 ? `${ids.length} streams merged` : (state.byId.get(ids[0]) || { name: ids[0] }).name;
  document.title = ids.length > 1 ? `cometail: ${ids.join(", ")}` : `cometail: ${ids[0]}`;
  renderPicker();
  const loaded = await w.load(INITIAL, opts.linked, opts.at);
  if (!loaded || w !== win) return;
  if (loaded.jump !== undefined) state.following = false; // opened around a linked line or a time
  if (opts.at != null && loaded.jump) state.atCursor = loaded.jump.cursor;
  showTopNote();
  schedule(true);
  startConn(w, loaded.cursors);
  if (loaded.jump) {
    flush();
    const i = view.indexOf(loaded.jump);
    if (i >= 0) view.scrollToIndex(i);
    state.jumped = loaded.jump;
  }
  restartBackground();
}

function onLive(stream, entries) {
  if (!win || !win.ids.includes(stream)) return;
  if (!state.following) state.newCount += entries.length;
  win.live(stream, entries);
}

// `?transport=poll` forces long polling and `?conn=tab` a connection of this tab's own (both
// for tests and troubleshooting); by default all tabs share one connection (live.js).
const urlFlags = new URLSearchParams(location.search);
const forcePoll = urlFlags.get("transport") === "poll";
const ownConn = urlFlags.get("conn") === "tab";

function startConn(w, cursors) {
  state.conn = connect({ streams: w.ids, cursors, q: w.q, forcePoll, onEntries: onLive, onStatus: setStatus }, ownConn);
  state.conn.start();
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
  state.bg = connect({
    streams: others,
    cursors,
    onEntries: (s, es) => {
      state.unread.set(s, (state.unread.get(s) || 0) + es.filter((e) => e.text !== undefined).length);
      renderPicker();
    },
    onStatus: () => {},
  }, ownConn);
  state.bg.start();
}

function navigate(ids) {
  state.linked = null;
  state.at = null;
  openView(ids);
  writeUrl();
}

/**
 * The query changed: the view opens again with it (where it was opened at a time, at that
 * time), once the server has accepted it; a refusal is shown under the box.
 */
async function queryChanged(q) {
  if (!win) return;
  const ids = win.ids;
  if (q) {
    let r;
    try {
      r = await fetch(`api/streams/${encodeURIComponent(ids[0])}/lines?last=0&q=${encodeURIComponent(q)}`, { cache: "no-store" });
    } catch (e) {
      toast(`query: ${e.message}`);
      return;
    }
    if (query.value() !== q) return; // typed on meanwhile
    if (r.status === 400) {
      let body = null;
      try {
        body = await r.json();
      } catch {
        body = { error: "the server refused the query" };
      }
      query.refused(body);
      return;
    }
  }
  state.q = q;
  state.linked = null;
  writeUrl();
  openView(ids, { at: state.at });
}

/** Open the view at time `ms` (the go-to-time control, an `#at=` link). */
function goTo(ms) {
  if (!win) return;
  state.linked = null;
  state.at = ms;
  writeUrl();
  openView(win.ids, { at: ms });
}

/** Follow the live end again (End, G, the new-lines control). */
function follow() {
  state.newCount = 0;
  if (!win) return;
  if (state.at !== null || state.atCursor) {
    state.at = null;
    state.atCursor = null;
    writeUrl();
  }
  if (!win.reachesEnd()) {
    // Reload the end of the file, then merge what arrived live meanwhile.
    const w = win;
    w.reloadEnd(INITIAL).then((ok) => {
      if (!ok || w !== win) return;
      state.following = true;
      schedule(true);
    });
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
  const w = win;
  if (!w.merged && !w.atStart()) toast("paging back to the start of the file…");
  if (!(await w.pageToStart()) || w !== win) return;
  schedule(true);
  flush();
  view.scrollTo(0);
  onScroll(false);
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
  const viewed = win ? win.ids : [];
  picker.render(state.streams, viewed, (id) =>
    viewed.includes(id) ? (state.following ? 0 : state.newCount) : state.unread.get(id) || 0,
  );
}

async function pollStreams() {
  try {
    const d = await api("api/streams");
    const old = state.byId;
    state.streams = d.streams;
    state.byId = new Map(d.streams.map((s) => [s.id, s]));
    // A viewed stream that lost its file (or errs) gets an inline marker row.
    if (win) {
      for (const s of d.streams) {
        const was = old.get(s.id);
        if (win.ids.includes(s.id) && was && was.state !== s.state && s.state !== "following") {
          win.addLocal({ notice: s.state, detail: s.reason || "", local: true }, s.id);
        }
      }
    }
    renderPicker();
    if (win) restartBackground();
    return d.streams;
  } catch {
    return null;
  } finally {
    setTimeout(pollStreams, STREAMS_POLL_MS);
  }
}

// ---------------------------------------------------------------- URL, wrap, keys

function writeUrl() {
  if (win && !win.merged) els.dl.href = downloadHref(win.ids[0], state.q, state.at);
  history.replaceState(
    null,
    "",
    viewUrl(location, {
      ids: win ? win.ids : [],
      query: state.q,
      filter: bar.spec(),
      tz: times.clock.zone,
      at: state.at,
      linked: state.linked,
    }),
  );
}

function setWrap(on) {
  view.setWrap(on);
  if (state.following) view.scrollToBottom();
}

els.newlines.addEventListener("click", follow);
els.dl.addEventListener("click", (ev) => {
  // A single stream's link goes to the server; a merged view saves what the page holds.
  if (!win || !win.merged) return;
  ev.preventDefault();
  saveEntries(win.entries);
});

document.addEventListener("keydown", (ev) => {
  // Shortcuts work whatever control has focus (a stream's checkbox, a button), except where
  // keys type text.
  const typing = isTextField(ev.target);
  if (ev.key === "Escape") {
    bar.clear();
    if (typing) els.q.blur();
    picker.close();
    return;
  }
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "/") {
    ev.preventDefault();
    bar.focus();
  } else if (ev.key === "End" || ev.key === "G") {
    ev.preventDefault();
    follow();
  } else if (ev.key === "Home" || ev.key === "g") {
    ev.preventDefault();
    toStart();
  }
});

addEventListener("hashchange", () => {
  const c = location.hash.slice(1);
  if (c.startsWith("at=")) {
    const ms = parseAt(decodeURIComponent(c.slice(3)));
    if (ms === null) toast("that link's time is not RFC 3339 with a zone");
    else if (ms !== state.at) goTo(ms);
    return;
  }
  if (c && win && !win.merged && c !== state.linked) {
    state.linked = c;
    openView(win.ids, { linked: c });
  }
});

// A hidden tab with connections of its own gives them back after a while (browsers allow
// six HTTP/1.1 connections per host across all tabs) and resumes from its cursors when shown
// again. Shared subscriptions cost no connection and stay.
const HIDDEN_GRACE_MS = 30000;
let hiddenTimer = 0;
document.addEventListener("visibilitychange", () => {
  clearTimeout(hiddenTimer);
  const own = [state.conn, state.bg].filter((c) => c && !c.shared);
  if (document.hidden) {
    hiddenTimer = setTimeout(() => {
      for (const c of own) c.disconnect("paused while the tab is hidden");
    }, HIDDEN_GRACE_MS);
  } else {
    for (const c of own) if (c.paused) c.resume();
  }
});

// ---------------------------------------------------------------- debug hooks (tests)

window.__cometail = {
  disconnect: () => state.conn && state.conn.disconnect(),
  reconnect: () => state.conn && state.conn.resume(),
  status: () => (state.conn ? state.conn.status : null),
  shared: () => !!(state.conn && state.conn.shared),
  retained: () => (win ? win.entries.length : 0),
  rowsInDom: () => els.spacer.querySelectorAll(".row").length,
  following: () => state.following,
  view: () => (win ? win.ids.slice() : []),
  texts: () => (win ? win.entries.filter((e) => e.text !== undefined).map((e) => e.text) : []),
  entries: () => (win ? win.entries.map((e) => (e.notice !== undefined ? `M:${e.notice}` : e.text)) : []),
  atStart: () => !!win && win.atStart(),
  busy: () => dirty || (!!win && win.busy()),
  cursorOf: (text) => (win ? win.cursorOf(text) : null),
  query: () => (win ? win.q : null),
  at: () => state.at,
  marked: () => state.atCursor,
};

// ---------------------------------------------------------------- start

async function main() {
  themeButton(els.theme);
  wrapButton(els.wrap, setWrap);

  const v = readView(location);
  bar.show(v.filter);
  state.q = v.query;
  query.show(state.q);
  if (v.tz) times.setZone(v.tz);
  setStatus(Status.CONNECTING);
  const streams = await pollStreams();
  if (!streams) {
    setStatus(Status.OFFLINE, "cannot reach the server");
  }
  if (els.q.value) bar.apply();
  const want = v.ids.filter((id) => state.byId.has(id));
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
  state.at = v.at;
  state.linked = v.linked;
  if (v.badAt) toast("that link's time is not RFC 3339 with a zone");
  const single = ids.length === 1;
  await openView(ids, { linked: single ? state.linked : null, at: single ? state.at : null });
  writeUrl();
}

main();
