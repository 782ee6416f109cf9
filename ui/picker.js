// picker.js: the stream picker, the side list of streams with their state and unread counts.
//
// It owns the list's elements and what a click on them means: a stream's name opens that
// stream alone, its checkbox adds it to (or takes it out of) the merged view. It does not know
// where the streams, the view or the counts come from: `render` is handed all three. On a
// narrow screen the list slides in over the log (`picker-open` on the body).

export class Picker {
  /**
   * @param {HTMLElement} list the `<ul>` of streams
   * @param {HTMLElement} menu the button that shows and hides the list on narrow screens
   * @param {(ids: string[]) => void} open open a view of these streams, in list order
   */
  constructor(list, menu, open) {
    this.list = list;
    this.open = open;
    this.order = []; // stream ids as last rendered
    this.viewed = new Set(); // ids in the current view, as last rendered
    list.addEventListener("click", (ev) => this.onClick(ev));
    menu.addEventListener("click", () => document.body.classList.toggle("picker-open"));
  }

  /** Hide the list (narrow screens). */
  close() {
    document.body.classList.remove("picker-open");
  }

  /**
   * Show `streams` (from /api/streams), marking those in `viewed`, each with `count(id)` new
   * lines as its badge.
   */
  render(streams, viewed, count) {
    this.order = streams.map((s) => s.id);
    this.viewed = new Set(viewed);
    const have = new Map([...this.list.children].map((li) => [li.dataset.id, li]));
    for (const s of streams) {
      const li = have.get(s.id) || this.item(s.id);
      have.delete(s.id);
      const inView = this.viewed.has(s.id);
      const detail = `${s.state}${s.reason ? `: ${s.reason}` : ""}`;
      li.classList.toggle("current", inView);
      li.dataset.state = s.state;
      li.querySelector("input").checked = inView;
      li.querySelector(".sid").textContent = s.id;
      li.querySelector(".sname").title = `${s.name} (${detail})`;
      li.querySelector(".why").textContent = s.state === "following" ? "" : detail;
      const n = count(s.id);
      const badge = li.querySelector(".badge");
      badge.textContent = n ? (n > 9999 ? "9999+" : String(n)) : "";
      badge.hidden = !n;
    }
    for (const li of have.values()) li.remove();
  }

  item(id) {
    const li = document.createElement("li");
    li.dataset.id = id;
    const cb = document.createElement("input");
    cb.type = "checkbox";
    cb.title = "include in the merged view";
    cb.setAttribute("aria-label", `show ${id} in the merged view`);
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
    this.list.appendChild(li);
    return li;
  }

  onClick(ev) {
    const li = ev.target.closest("li");
    if (!li) return;
    const id = li.dataset.id;
    if (ev.target.matches("input")) {
      const ids = new Set(this.viewed);
      if (ev.target.checked) ids.add(id);
      else if (ids.size > 1) ids.delete(id);
      else {
        ev.target.checked = true; // the last stream of a view stays
        return;
      }
      this.open(this.order.filter((x) => ids.has(x)));
    } else if (ev.target.closest(".sname")) {
      this.open([id]);
      this.close();
    }
  }
}
