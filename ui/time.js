// time.js: event times on the page: the time column's text in the display zone (the browser's
// own or UTC), the go-to-time input's values, and `#at=` links.
//
// The server sends `ts` (event time written in the line) and `time` (arrival) as integer
// milliseconds since the Unix epoch, UTC. Formatting uses Date's own getters (local or UTC),
// not Intl: it runs only for the rows drawn, and it must give the same digits the input shows.

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** The display zone: "local" (the browser's) or "utc". */
export class Clock {
  constructor(zone) {
    this.zone = zone === "utc" ? "utc" : "local";
  }

  get utc() {
    return this.zone === "utc";
  }

  /** The zone's name for the column header: "UTC" or the browser's IANA name. */
  name() {
    if (this.utc) return "UTC";
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "local";
    } catch {
      return "local";
    }
  }

  parts(ms) {
    const d = new Date(ms);
    return this.utc
      ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()]
      : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
  }

  /** `2026-12-01 14:05:03.123` (`short`: `14:05:03.123`). */
  cell(ms, short) {
    const [y, mo, d, h, mi, s, msec] = this.parts(ms);
    const time = `${pad(h)}:${pad(mi)}:${pad(s)}.${pad(msec, 3)}`;
    return short ? time : `${y}-${pad(mo)}-${pad(d)} ${time}`;
  }

  /** The calendar day of `ms` in this zone: `Tue, 1 Dec 2026`. */
  day(ms) {
    const d = new Date(ms);
    const opts = { weekday: "short", day: "numeric", month: "short", year: "numeric" };
    if (this.utc) opts.timeZone = "UTC";
    return d.toLocaleDateString("en-GB", opts);
  }

  /** The value a `datetime-local` input shows for `ms` (to the second). */
  inputValue(ms) {
    const [y, mo, d, h, mi, s] = this.parts(ms);
    return `${y}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}`;
  }

  /**
   * Epoch ms of a `datetime-local` value (`YYYY-MM-DDTHH:MM[:SS[.mmm]]`) read in this zone,
   * or null when it is not one.
   */
  fromInput(v) {
    const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(v || "");
    if (!m) return null;
    const n = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
    if (m[7]) n[6] = Number(m[7].padEnd(3, "0"));
    const ms = this.utc
      ? Date.UTC(n[0], n[1] - 1, n[2], n[3], n[4], n[5], n[6])
      : new Date(n[0], n[1] - 1, n[2], n[3], n[4], n[5], n[6]).getTime();
    return Number.isFinite(ms) ? ms : null;
  }
}

/** RFC 3339 in UTC, as links and `at=` carry it: `2026-12-01T14:05:00.000Z`. */
export function rfc3339(ms) {
  return new Date(ms).toISOString();
}

/** Epoch ms of an `#at=` value (RFC 3339 with a zone, or epoch ms), or null. */
export function parseAt(s) {
  if (!s) return null;
  if (/^\d{1,16}$/.test(s)) return Number(s);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(s)) return null;
  const ms = Date.parse(s);
  return Number.isFinite(ms) ? ms : null;
}
