// url.js: the page's address, which holds its view so that a link opens the same place:
//   ?s=a.log,b.log       the streams
//   &query=…             the server-side query (`q` of the API)
//   &q=…&re=1&cs=1       the filter of loaded lines (named before there was a query, so
//                        older links keep their meaning)
//   &tz=utc              times in UTC
//   #at=<RFC 3339>       opened at a time, or #<cursor>: opened around a line
// Other parameters (`transport`, `conn`) are left as they are.

import { parseAt, rfc3339 } from "./time.js";

/**
 * The view a location names: `{ids, query, filter: {q, re, cs}, tz, at, badAt, linked}`;
 * `at` is epoch ms or null (`badAt` when the hash had an unreadable time).
 */
export function readView(loc) {
  const p = new URLSearchParams(loc.search);
  const hash = loc.hash.slice(1);
  let at = null;
  let linked = null;
  let badAt = false;
  if (hash.startsWith("at=")) {
    at = parseAt(decodeURIComponent(hash.slice(3)));
    badAt = at === null;
  } else linked = hash || null;
  return {
    ids: (p.get("s") || "").split(",").filter(Boolean),
    query: (p.get("query") || "").trim(),
    filter: { q: p.get("q"), re: p.get("re") === "1", cs: p.get("cs") === "1" },
    tz: p.get("tz"),
    at,
    badAt,
    linked,
  };
}

/** The address of view `v` (as readView gives it), from location `loc`. */
export function viewUrl(loc, v) {
  const p = new URLSearchParams(loc.search);
  if (v.ids.length) p.set("s", v.ids.join(","));
  const params = [
    ["query", v.query],
    ["q", v.filter.q],
    ["re", v.filter.re ? "1" : ""],
    ["cs", v.filter.cs ? "1" : ""],
    ["tz", v.tz === "utc" ? "utc" : ""],
  ];
  for (const [k, val] of params) {
    if (val) p.set(k, val);
    else p.delete(k);
  }
  const hash = v.at !== null ? `#at=${rfc3339(v.at)}` : v.linked ? `#${v.linked}` : "";
  return `${loc.pathname}?${p}${hash}`;
}
