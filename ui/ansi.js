// ansi.js: ANSI escape sequences -> styled text segments.
//
// Only SGR (`ESC [ ... m`) is interpreted: 16, 256 and 24-bit colours, bold, dim, italic,
// underline, strike, inverse. Every other escape sequence (cursor movement, OSC titles and
// links, charset switches) and stray C0 controls other than tab are dropped. Output is data,
// never markup: the caller builds DOM nodes from it with textContent.

// CSI, OSC (terminated by BEL or ST), two-byte ESC sequences, a lone ESC, C1 CSI, controls.
// eslint-disable-next-line no-control-regex
const ESC_RE = /\x1b\[([0-?]*)[ -/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[P^_][^\x1b]*(?:\x1b\\)?|\x1b[ -/]*[0-~]?|\x9b[0-?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]/g;

/** Cheap test used to skip parsing for the (common) plain lines. */
// eslint-disable-next-line no-control-regex
const HAS_CTRL = /[\x00-\x08\x0b-\x1f\x7f\x9b]/;

function xterm256(n) {
  if (n < 16) return n; // palette index, themed by CSS
  if (n < 232) {
    n -= 16;
    const v = [0, 95, 135, 175, 215, 255];
    return `rgb(${v[Math.floor(n / 36)]},${v[Math.floor(n / 6) % 6]},${v[n % 6]})`;
  }
  const g = 8 + (n - 232) * 10;
  return `rgb(${g},${g},${g})`;
}

function applySgr(st, params) {
  const p = params === "" ? [0] : params.split(/[;:]/).map((x) => (x === "" ? 0 : Number(x)));
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === 0) {
      for (const k of Object.keys(st)) delete st[k];
    } else if (c === 1) st.b = true;
    else if (c === 2) st.d = true;
    else if (c === 3) st.i = true;
    else if (c === 4) st.u = true;
    else if (c === 7) st.inv = true;
    else if (c === 9) st.s = true;
    else if (c === 21 || c === 22) {
      delete st.b;
      delete st.d;
    } else if (c === 23) delete st.i;
    else if (c === 24) delete st.u;
    else if (c === 27) delete st.inv;
    else if (c === 29) delete st.s;
    else if (c >= 30 && c <= 37) st.fg = c - 30;
    else if (c === 39) delete st.fg;
    else if (c >= 40 && c <= 47) st.bg = c - 40;
    else if (c === 49) delete st.bg;
    else if (c >= 90 && c <= 97) st.fg = c - 90 + 8;
    else if (c >= 100 && c <= 107) st.bg = c - 100 + 8;
    else if (c === 38 || c === 48) {
      const key = c === 38 ? "fg" : "bg";
      if (p[i + 1] === 5 && i + 2 < p.length) {
        const n = p[i + 2];
        if (n >= 0 && n <= 255) st[key] = xterm256(n);
        i += 2;
      } else if (p[i + 1] === 2 && i + 4 < p.length) {
        const [r, g, b] = [p[i + 2], p[i + 3], p[i + 4]].map((v) => Math.max(0, Math.min(255, v | 0)));
        st[key] = `rgb(${r},${g},${b})`;
        i += 4;
      } else break;
    }
  }
}

/**
 * Parse a line into `{plain, segs}`; `segs` is null for a line without escapes.
 * Each segment is `{t: text, st: style|null}` and the concatenated `t`s equal `plain`.
 */
export function parseAnsi(line) {
  if (!HAS_CTRL.test(line)) return { plain: line, segs: null };
  const segs = [];
  let st = {};
  let last = 0;
  let plain = "";
  const push = (t) => {
    if (!t) return;
    const style = Object.keys(st).length ? { ...st } : null;
    segs.push({ t, st: style });
    plain += t;
  };
  ESC_RE.lastIndex = 0;
  let m;
  while ((m = ESC_RE.exec(line))) {
    push(line.slice(last, m.index));
    last = ESC_RE.lastIndex;
    if (m[2] === "m" && m[0].startsWith("\x1b[")) applySgr(st, m[1]);
    if (m[0].length === 0) ESC_RE.lastIndex++;
  }
  push(line.slice(last));
  return { plain, segs };
}

/** Apply a style to a span via classes (16 colours, themed) and CSSOM (256 / 24-bit). */
export function styleSpan(el, st) {
  let fg = st.fg;
  let bg = st.bg;
  if (st.inv) {
    [fg, bg] = [bg, fg];
    if (fg === undefined) el.classList.add("ainv-fg");
    if (bg === undefined) el.classList.add("ainv-bg");
  }
  if (typeof fg === "number") el.classList.add(`af${fg}`);
  else if (fg) el.style.color = fg;
  if (typeof bg === "number") el.classList.add(`ab${bg}`);
  else if (bg) el.style.backgroundColor = bg;
  if (st.b) el.classList.add("a-b");
  if (st.d) el.classList.add("a-d");
  if (st.i) el.classList.add("a-i");
  if (st.u) el.classList.add("a-u");
  if (st.s) el.classList.add("a-s");
}

/**
 * The text of an entry without escape sequences, for filtering and measuring. Unlike
 * `parsed` it keeps nothing on the entry, so filtering 100,000 lines does not hold 100,000
 * parsed forms in memory (only drawn rows are parsed).
 */
export function plainText(e) {
  if (e.p) return e.p.plain;
  if (e.notice !== undefined) return noticeText(e);
  return HAS_CTRL.test(e.text) ? e.text.replace(ESC_RE, "") : e.text;
}

/** Parsed ANSI form of an entry, cached on it. */
export function parsed(e) {
  if (!e.p) e.p = e.notice !== undefined ? { plain: noticeText(e), segs: null } : parseAnsi(e.text);
  return e.p;
}

export function noticeText(e) {
  const label = { rotated: "rotated", truncated: "truncated", gap: "gap", waiting: "waiting", error: "error" }[e.notice] || e.notice;
  return `── ${label}${e.detail ? `: ${e.detail}` : ""} ──`;
}
