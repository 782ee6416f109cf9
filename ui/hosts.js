// hosts.js: a hub's stream list grouped by host.
//
// On a hub, /api/streams gives every file a `host`; this module puts a heading before each
// host's files (host -> files, in the hub's order) and marks a host `stale` when all its files
// are (its agent's heartbeat stopped). A standalone server's streams have no `host`, and the
// list stays flat. It only arranges the picker's items; what a click means stays the picker's.

/**
 * Group the items of `list` (rendered by the picker from `streams`) under host headings.
 * @param {HTMLElement} list the picker's `<ul>`
 * @param {{id: string, host?: string, path?: string, state: string, reason?: string}[]} streams
 */
export function groupByHost(list, streams) {
  for (const head of list.querySelectorAll("li.host-head")) head.remove();
  const hosts = new Map();
  for (const s of streams) {
    if (!s.host) continue;
    if (!hosts.has(s.host)) hosts.set(s.host, []);
    hosts.get(s.host).push(s);
  }
  if (!hosts.size) return;
  const items = new Map([...list.children].map((li) => [li.dataset.id, li]));
  for (const [host, files] of hosts) {
    const stale = files.every((f) => f.state === "stale");
    const head = document.createElement("li");
    head.className = "host-head";
    head.dataset.host = host;
    head.classList.toggle("stale", stale);
    const name = document.createElement("span");
    name.className = "hname";
    name.textContent = host;
    head.append(name);
    if (stale) {
      const mark = document.createElement("span");
      mark.className = "hstale";
      mark.textContent = "stale";
      mark.title = files[0].reason || "no heartbeat from this host";
      head.append(mark);
    }
    // Appending moves: the host's heading, then its files, in the hub's order.
    list.append(head);
    for (const f of files) {
      const li = items.get(f.id);
      if (!li) continue;
      // Under its host's heading a file is named without the host (`web-1~app.log` is
      // `app.log`); its full path on the host is its title.
      const label = li.querySelector(".sid");
      const prefix = `${host}~`;
      if (label && f.id.startsWith(prefix)) {
        label.textContent = f.id.slice(prefix.length);
        if (f.path) label.title = f.path;
      }
      list.append(li);
    }
  }
}
