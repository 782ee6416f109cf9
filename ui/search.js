// The whole-history search panel: runs the filter box's text as a search over the stream's
// entire history (rotated files included) through `/api/streams/{id}/search`, lists the
// matches as they stream in (newest first) with progress, a count and a Stop, and jumps the
// view to a match in its context (through the URL hash, as linked cursors do). Results can
// be downloaded as text.
//
// A merged view searches its streams one after another through `/api/search?streams=`; each
// match carries its stream's name, and a click opens that stream around it. A line too long
// to search is listed as a mark (the server's `gap` notice), not a match.
//
// It owns its elements (#hsearch, #spanel and what is inside) and one EventSource at a time;
// app.js only tells it which streams are open and how to open one around a match.

const MAX_ROWS = 10000;

export class SearchPanel {
  /// `current()` gives the open stream's id, or null when several are merged; `merged()`
  /// their ids then; `open(id, cursor)` opens one stream around a match of a merged search.
  constructor({ current, merged, open, input, regex }) {
    this.current = current;
    this.merged = merged;
    this.open = open;
    this.input = input;
    this.regex = regex;
    this.es = null;
    this.texts = [];
    this.el = {
      button: document.getElementById("hsearch"),
      panel: document.getElementById("spanel"),
      bar: document.getElementById("sprog"),
      count: document.getElementById("scount"),
      stop: document.getElementById("sstop"),
      more: document.getElementById("smore"),
      dl: document.getElementById("sdl"),
      close: document.getElementById("sclose"),
      list: document.getElementById("slist"),
    };
    this.el.button.addEventListener("click", () => this.start());
    this.el.stop.addEventListener("click", () => this.stop("stopped"));
    this.el.close.addEventListener("click", () => {
      this.stop();
      this.el.panel.hidden = true;
    });
    this.el.more.addEventListener("click", () => this.start(this.next));
    this.el.dl.addEventListener("click", () => this.download());
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && ev.altKey) {
        ev.preventDefault();
        this.start();
      }
    });
    this.el.list.addEventListener("click", (ev) => {
      const row = ev.target.closest("li[data-cursor]");
      if (row) this.jump(row);
    });
  }

  /// The query in the `q` grammar: the query box's text when it has some (it is `q` already),
  /// else the filter box's text, as a regex when `.*` is pressed.
  query() {
    const server = document.getElementById("query");
    if (server && server.value.trim()) return server.value.trim();
    const text = this.input.value.trim();
    if (!text) return "";
    return this.regex() ? `/${text}/` : text;
  }

  /// Starts a search (or continues one from `before`).
  start(before) {
    const id = this.current();
    const ids = id ? null : this.merged();
    const q = this.query();
    this.stop();
    this.el.panel.hidden = false;
    if ((!id && !ids) || !q) {
      this.el.count.textContent = id || ids ? "type what to search for" : "open a stream to search it";
      return;
    }
    if (!before) {
      this.texts = [];
      this.el.list.replaceChildren();
    }
    this.id = id || ids.join("+");
    this.next = null;
    this.el.more.hidden = true;
    this.el.bar.value = 0;
    this.el.stop.disabled = false;
    this.setCount("searching…");
    const params = new URLSearchParams({ q, limit: "1000" });
    if (before) params.set("before", before);
    if (ids) params.set("streams", ids.join(","));
    const es = new EventSource(
      id ? `api/streams/${encodeURIComponent(id)}/search?${params}` : `api/search?${params}`,
    );
    this.es = es;
    es.addEventListener("entries", (ev) => {
      if (es !== this.es) return;
      const d = JSON.parse(ev.data);
      this.add(d.entries, d.stream);
    });
    es.addEventListener("progress", (ev) => {
      if (es !== this.es) return;
      const p = JSON.parse(ev.data);
      this.el.bar.value = p.total ? Math.min(1, p.scanned / p.total) : 0;
      this.setCount(`${this.texts.length.toLocaleString()} matches, searching…`);
    });
    es.addEventListener("done", (ev) => {
      if (es !== this.es) return;
      const d = JSON.parse(ev.data);
      this.next = d.next;
      this.el.bar.value = 1;
      this.el.more.hidden = !d.next;
      this.stop(d.next ? "limit reached" : "whole history searched");
    });
    es.onerror = () => {
      // The server refused (400/503) or went away: EventSource would retry; a search does not.
      if (es !== this.es) return;
      this.stop("the search could not run (another may be running; try again)");
    };
  }

  stop(why) {
    if (this.es) {
      this.es.close();
      this.es = null;
    }
    this.el.stop.disabled = true;
    if (why) this.setCount(`${this.texts.length.toLocaleString()} matches, ${why}`);
  }

  setCount(text) {
    this.el.count.textContent = text;
  }

  /// Lists matches (of `stream`, in a merged search) and marks.
  add(entries, stream) {
    const frag = document.createDocumentFragment();
    for (const e of entries) {
      if (this.texts.length >= MAX_ROWS) break;
      const li = document.createElement("li");
      if (typeof e.text !== "string") {
        // A part of the history the server could not search (a line over 64 MiB).
        if (!e.notice) continue;
        li.className = "mark";
        li.textContent = e.detail || e.notice;
        frag.append(li);
        continue;
      }
      this.texts.push(stream ? `${stream}: ${e.text}` : e.text);
      li.dataset.cursor = e.cursor;
      li.tabIndex = 0;
      if (stream) {
        li.dataset.stream = stream;
        const label = document.createElement("span");
        label.className = "sstream";
        label.textContent = stream;
        li.append(label, e.text);
      } else {
        li.textContent = e.text;
      }
      frag.append(li);
    }
    this.el.list.append(frag);
  }

  /// Opens the view around the match (app.js reacts to the hash) and marks the row.
  jump(row) {
    for (const r of this.el.list.querySelectorAll("li.current")) r.classList.remove("current");
    row.classList.add("current");
    if (row.dataset.stream) this.open(row.dataset.stream, row.dataset.cursor);
    else location.hash = row.dataset.cursor;
  }

  download() {
    const blob = new Blob([this.texts.map((t) => `${t}\n`).join("")], { type: "text/plain" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${this.id || "search"}-search.log`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }
}
