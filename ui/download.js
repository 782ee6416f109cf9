// download.js: the Download control, which saves what the view shows.
//
// One stream: a link to the server's `/raw?download=1` (the server names the file), reading
// the view's query and, for a view opened at a time, from that time; otherwise the stream's
// last page. A download is one server page (at most DOWNLOAD_LIMIT lines). A merged view has
// no merged endpoint to download from: its entries, as the page holds them in time order, are
// saved as text made in the page.

const DOWNLOAD_LIMIT = 10000; // the server's largest page

/**
 * The download address of a single stream's view, relative to the page.
 * @param {string} id the stream
 * @param {string} q the view's query ("" for none)
 * @param {number|null} at the time the view opened at (epoch ms), or null
 */
export function downloadHref(id, q, at) {
  const p = new URLSearchParams();
  if (at != null) {
    p.set("at", new Date(at).toISOString());
    p.set("limit", String(DOWNLOAD_LIMIT));
  } else p.set("last", String(DOWNLOAD_LIMIT));
  if (q) p.set("q", q);
  p.set("download", "1");
  return `api/streams/${encodeURIComponent(id)}/raw?${p}`;
}

/** One line of a merged download: `[stream] text`, a notice as `/raw` writes it. */
function lineOf(e) {
  const text = e.notice !== undefined ? `==> ${e.notice}: ${e.detail || ""} <==` : e.text;
  return `[${e.stream}] ${text}`;
}

/** Save a merged view's entries as `merged.log`, through a link made for the purpose. */
export function saveEntries(entries) {
  const body = entries.map(lineOf).join("\n") + (entries.length ? "\n" : "");
  const url = URL.createObjectURL(new Blob([body], { type: "text/plain;charset=utf-8" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = "merged.log";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return body;
}
