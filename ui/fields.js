// fields.js: what a structured line holds. A JSON object line or a logfmt line is shown as its
// message followed by `key=value` fields; the expanded row shows the whole object.
//
// Parsing is lazy and bounded: JSON lines over MAX_JSON characters stay text, fields are
// flattened to dotted paths (the paths the server's `q` takes) at most MAX_FIELDS of them,
// and the expanded tree stops at MAX_DEPTH. An entry remembers only *that* it is not
// structured (`e.sf = null`) and the one-line text it shows (`e.dl`, for wrapped heights); the
// parsed objects of the last CACHED entries are kept aside, so a window of 100,000 JSON lines
// does not hold 100,000 parsed objects. Nothing here touches the DOM.

const MAX_JSON = 65536;
const MAX_FIELDS = 64;
const MAX_DEPTH = 20;
const MAX_DETAIL_LINES = 400;
const CACHED = 2000;

const cache = new Map(); // entry -> structure, least recently used first

/** Keys whose value is the line's message. */
const MESSAGE_KEYS = ["msg", "message", "@m", "log", "@mt"];
/** Keys the time and level columns already show. */
const SHOWN_KEYS = new Set(["ts", "time", "timestamp", "@timestamp", "@t", "t", "level", "lvl", "severity", "levelname", "loglevel", "@l"]);

/** A key the query grammar takes as a path segment. */
const KEY_RE = /^[A-Za-z_@][A-Za-z0-9_@-]*$/;

function logfmt(text) {
  const out = {};
  let n = 0;
  const re = /\s*([^\s="]+)=("((?:[^"\\]|\\.)*)"|[^\s"]*)/y;
  let i = 0;
  while (i < text.length) {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) return text.slice(i).trim() ? null : n >= 2 ? out : null;
    out[m[1]] = m[3] !== undefined ? m[3].replace(/\\(.)/g, "$1") : m[2];
    n++;
    i = re.lastIndex;
  }
  return n >= 2 ? out : null;
}

function plainObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Flatten `obj` into `[path, value]` pairs of scalars (dotted paths, array indexes). */
function flatten(obj, prefix, out, depth) {
  for (const [k, v] of Object.entries(obj)) {
    if (out.length >= MAX_FIELDS) return;
    const path = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === "object" && depth < 4) flatten(v, path, out, depth + 1);
    else out.push([path, v]);
  }
}

/**
 * The structure of entry `e`: `{kind: "json"|"logfmt", obj, msg, msgKey, fields}`, or null
 * for a line that is neither. Cached on the entry.
 */
export function structure(e) {
  if (e.sf === null) return null;
  const hit = cache.get(e);
  if (hit) {
    cache.delete(e);
    cache.set(e, hit);
    return hit;
  }
  let s = null;
  const text = e.text;
  if (typeof text === "string" && !e.truncated) {
    let obj = null;
    let kind = null;
    if (text.length <= MAX_JSON && text.charCodeAt(0) === 123 /* { */) {
      try {
        const v = JSON.parse(text);
        if (plainObject(v)) {
          obj = v;
          kind = "json";
        }
      } catch {
        obj = null;
      }
    } else if (text.length <= MAX_JSON && text.indexOf("=") > 0) {
      obj = logfmt(text);
      kind = "logfmt";
    }
    if (obj) {
      const msgKey = MESSAGE_KEYS.find((k) => typeof obj[k] === "string");
      const fields = [];
      const rest = {};
      for (const [k, v] of Object.entries(obj)) if (k !== msgKey && !SHOWN_KEYS.has(k)) rest[k] = v;
      flatten(rest, "", fields, 0);
      s = { kind, obj, msgKey, msg: msgKey ? obj[msgKey].replace(/\n$/, "") : "", fields };
    }
  }
  if (!s) {
    e.sf = null;
    return null;
  }
  cache.set(e, s);
  if (cache.size > CACHED) cache.delete(cache.keys().next().value);
  return s;
}

/** A field value as the chip shows it. */
export function show(v) {
  if (typeof v === "string") return v;
  if (v === undefined) return "";
  return JSON.stringify(v);
}

/** The one-line text the row of structured entry `e` shows (cached on the entry). */
export function lineOf(e, s) {
  if (e.dl === undefined) e.dl = line(s);
  return e.dl;
}

/** The one-line text a structured row shows: `msg k=v k=v`. */
function line(s) {
  const parts = s.msg ? [s.msg.replace(/\n/g, " ⏎ ")] : [];
  for (const [k, v] of s.fields) parts.push(`${k}=${show(v).replace(/\n/g, " ⏎ ")}`);
  return parts.join(" ");
}

/** A value as the query grammar takes it: bare when it can be, else a quoted phrase. */
function queryValue(v) {
  const t = typeof v === "string" ? v : JSON.stringify(v);
  if (t && !/[\s"]/.test(t)) return t;
  return `"${t.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * The `q` term that selects lines whose field `path` equals `value` (`not`: differs), or
 * null when the path is not one the grammar can name.
 */
export function fieldTerm(path, value, not) {
  if (!path.split(".").every((k, i) => KEY_RE.test(k) || (i > 0 && /^\d+$/.test(k)))) return null;
  if (value !== null && typeof value === "object") return null;
  return `${path}${not ? "!=" : "="}${queryValue(value)}`;
}

/** The whole object as indented text, at most MAX_DEPTH deep and MAX_DETAIL_LINES long. */
export function detail(s) {
  const seen = (v, depth) => {
    if (v === null || typeof v !== "object") return v;
    if (depth >= MAX_DEPTH) return "…";
    if (Array.isArray(v)) return v.map((x) => seen(x, depth + 1));
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = seen(x, depth + 1);
    return o;
  };
  let lines = (s.kind === "json" ? JSON.stringify(seen(s.obj, 0), null, 2) : Object.entries(s.obj).map(([k, v]) => `${k}=${v}`).join("\n")).split("\n");
  if (lines.length > MAX_DETAIL_LINES) {
    const more = lines.length - MAX_DETAIL_LINES;
    lines = lines.slice(0, MAX_DETAIL_LINES);
    lines.push(`… ${more} more lines (copy the line to get them)`);
  }
  return lines;
}
