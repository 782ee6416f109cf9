// app.js: cometail's page, as wiring. The HTTP API is docs/API.md; each part of the page is a
// module that owns one idea:
//   window.js  the window of a view's entries (history pages, live entries, trimming, catch-up)
//   conn.js    a live connection (SSE, long polling, resume from its own cursors)
//   live.js    the tab's side of the one connection all tabs share (relay.js, a SharedWorker)
//   view.js    the virtual scroller; screen.js what it shows, and following the live end
//   rows.js    a row's element and the pointer on rows (tooltip, copy, link)
//   picker.js  the stream list; streams.js its contents, polled, and unread counts; hosts.js
//              its host headings on a hub
//   filter.js  the line filter (regexes in a worker); filterbar.js its controls
//   query.js   the query box (`q`, filtered on the server) and the level chooser
//   fields.js  a JSON or logfmt line's message and fields
//   time.js    the time column's clock (local or UTC), go-to-time values, `#at=` links;
//              timebar.js its controls
//   url.js     the page's address, which holds the view
//   prefs.js   the theme and wrap choices, remembered
//   search.js  the whole-history search panel
// This file holds what joins them: which view is open (streams, query, time), the stream list,
// the header's controls and keys.

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
import { Screen } from "./screen.js";
import { StreamList } from "./streams.js";

const INITIAL = 1000; // `last=` on open

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
  conn: null,
  linked: null, // cursor from the URL hash
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
  onScroll: (user) => screen.onScroll(user),
  resized: () => screen.onResized(),
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
      screen.schedule(true, true);
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
const streams = new StreamList(picker, {
  api,
  connect: (o) => connect(o, ownConn),
  viewed: () => (win ? win.ids : []),
  viewedCount: () => (screen.following ? 0 : screen.newCount),
  // A viewed stream that lost its file (or errs) gets an inline marker row.
  changed: (s) => {
    if (win && s.state !== "following") win.addLocal({ notice: s.state, detail: s.reason || "", local: true }, s.id);
  },
});

const bar = new FilterBar(
  { q: els.q, re: els.re, cs: els.cs, err: els.ferr },
  {
    entries: () => (win ? win.entries : []),
    changed: () => {
      view.invalidate();
      screen.schedule(true, true);
      writeUrl();
    },
    decided: () => screen.schedule(true),
  },
);

new SearchPanel({
  current: () => (win && !win.merged ? win.ids[0] : null),
  merged: () => (win && win.merged ? win.ids : null),
  // A match of a merged search opens its stream around it.
  open: (id, cursor) => {
    state.linked = cursor;
    state.at = null;
    openView([id], { linked: cursor });
    writeUrl();
  },
  input: els.q,
  regex: () => els.re.getAttribute("aria-pressed") === "true",
});

const screen = new Screen(view, { newlines: els.newlines, top: els.top }, {
  win: () => win,
  filter: () => bar.filter,
  counted: () => streams.render(),
  leaveTime: () => {
    if (state.at === null && !state.atCursor) return;
    state.at = null;
    state.atCursor = null;
    writeUrl();
  },
  say: (msg) => toast(msg),
});

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
      screen.schedule(true, anchor);
    },
    settled: () => screen.schedule(), // the next flush looks whether another page is wanted
    following: () => screen.following,
    shownSeq: () => {
      const e = view.firstDrawn();
      return e ? e.seq : null;
    },
    warn: toast,
  }, state.q);
  win = w;
  screen.reset();
  streams.seen(ids);
  view.clear();
  view.setRows([], false);
  els.title.textContent = ids.length > 1 ? `${ids.length} streams merged` : (streams.byId.get(ids[0]) || { name: ids[0] }).name;
  document.title = ids.length > 1 ? `cometail: ${ids.join(", ")}` : `cometail: ${ids[0]}`;
  streams.render();
  const loaded = await w.load(INITIAL, opts.linked, opts.at);
  if (!loaded || w !== win) return;
  if (loaded.jump !== undefined) screen.following = false; // opened around a linked line or a time
  if (opts.at != null && loaded.jump) state.atCursor = loaded.jump.cursor;
  screen.showTopNote();
  screen.schedule(true);
  startConn(w, loaded.cursors);
  if (loaded.jump) {
    screen.flush();
    const i = view.indexOf(loaded.jump);
    if (i >= 0) view.scrollToIndex(i);
    screen.jumped = loaded.jump;
  }
  streams.count();
}

function onLive(stream, entries) {
  if (!win || !win.ids.includes(stream)) return;
  screen.arrived(entries.length);
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
    let refusal;
    try {
      refusal = await refusalOf(ids[0], q);
    } catch (e) {
      toast(`query: ${e.message}`);
      return;
    }
    if (query.value() !== q) return; // typed on meanwhile
    if (refusal) {
      query.refused(refusal);
      return;
    }
  }
  state.q = q;
  state.linked = null;
  writeUrl();
  openView(ids, { at: state.at });
}

/**
 * Why the server refuses query `q` (its 400 answer, `{error, at, len}`), asked of stream `id`
 * with a read of nothing; null when it takes it. Throws when the server cannot be reached.
 */
async function refusalOf(id, q) {
  const r = await fetch(`api/streams/${encodeURIComponent(id)}/lines?last=0&q=${encodeURIComponent(q)}`, { cache: "no-store" });
  if (r.status !== 400) return null;
  try {
    return await r.json();
  } catch {
    return { error: "the server refused the query" };
  }
}

/** Open the view at time `ms` (the go-to-time control, an `#at=` link). */
function goTo(ms) {
  if (!win) return;
  state.linked = null;
  state.at = ms;
  writeUrl();
  openView(win.ids, { at: ms });
}

// ---------------------------------------------------------------- status, toasts

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
  if (screen.following) view.scrollToBottom();
}

const follow = () => screen.follow(INITIAL);
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
    screen.toStart();
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
  const own = [state.conn, streams.bg].filter((c) => c && !c.shared);
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
  following: () => screen.following,
  view: () => (win ? win.ids.slice() : []),
  texts: () => (win ? win.entries.filter((e) => e.text !== undefined).map((e) => e.text) : []),
  entries: () => (win ? win.entries.map((e) => (e.notice !== undefined ? `M:${e.notice}` : e.text)) : []),
  atStart: () => !!win && win.atStart(),
  busy: () => screen.dirty || (!!win && win.busy()),
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
  if (!(await streams.poll())) {
    setStatus(Status.OFFLINE, "cannot reach the server");
  }
  if (els.q.value) bar.apply();
  // A link names files, or on a hub views of them too (`*~app.log`, `web-1~*`).
  const known = (id) => streams.byId.has(id) || streams.views.includes(id);
  const want = v.ids.filter(known);
  const ids = want.length ? want : streams.list.length ? [streams.list[0].id] : [];
  const unknown = v.ids.filter((id) => !known(id));
  if (unknown.length && streams.list.length) toast(`no stream ${unknown.join(", ")} here: showing ${ids.join(", ")}`);
  if (!ids.length) {
    els.top.textContent = "no streams yet: waiting for files to match";
    els.top.hidden = false;
    const wait = setInterval(() => {
      if (streams.list.length) {
        clearInterval(wait);
        navigate([streams.list[0].id]);
      }
    }, 500);
    return;
  }
  state.at = v.at;
  state.linked = v.linked;
  if (v.badAt) toast("that link's time is not RFC 3339 with a zone");
  if (state.q) {
    // A query from a link is checked as a typed one is: a refusal is shown under the box
    // (the view would only say "no matches"), and the view opens without it.
    let refusal = null;
    try {
      refusal = await refusalOf(ids[0], state.q);
    } catch {
      // Unreachable: the view's own reads say so.
    }
    if (refusal) {
      query.refused(refusal);
      state.q = "";
    }
  }
  const single = ids.length === 1;
  await openView(ids, { linked: single ? state.linked : null, at: single ? state.at : null });
  writeUrl();
}

main();
