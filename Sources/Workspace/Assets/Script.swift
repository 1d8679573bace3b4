extension Assets {
    /// The workspace's one script: small and hand-written. It keeps open pages live (an
    /// `EventSource` on `/api/events`, `Docs/workspace-live.md`), shows the hub banner, writes times
    /// in the agent's time zone and counts SLA deadlines down.
    static let js = #"""
"use strict";
// Tierline workspace: live regions, the hub banner, local times and SLA countdowns.
// Contract with the templates (Docs/workspace-live.md):
//   <section id="queue" data-live="queue">                       refreshed on every change
//   <section id="t" data-live="ticket" data-ticket-id="UUID">   refreshed when that ticket changed
//   <time datetime="ISO">                                        shown in the agent's time zone
//   <time data-deadline="ISO" data-warn="ISO">                   "due in 12 min" / "breached 3 min ago"
(() => {
  const body = document.body;
  let seen = body.dataset.version || null;

  // Times ------------------------------------------------------------------------------------
  function zoneOf(name) {
    if (!name) return undefined;
    try { new Intl.DateTimeFormat(undefined, { timeZone: name }); return name; } catch (e) { return undefined; }
  }
  const zone = zoneOf(body.dataset.timeZone);
  const short = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short", timeZone: zone });
  const long = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long", timeZone: zone });
  const atRiskMillis = 15 * 60 * 1000;

  function span(millis) {
    const s = Math.floor(millis / 1000), m = Math.floor(s / 60), h = Math.floor(m / 60);
    if (s < 60) return s + " s";
    if (m < 90) return m + " min";
    if (h < 48) return h + " h";
    return Math.floor(h / 24) + " days";
  }

  function localize(root) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      const date = new Date(el.getAttribute("datetime"));
      if (isNaN(date)) continue;
      el.title = long.format(date);
      if (!el.hasAttribute("data-deadline")) el.textContent = short.format(date);
    }
    tick();
  }

  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll("time[data-deadline]")) {
      const due = Date.parse(el.dataset.deadline);
      if (isNaN(due)) continue;
      const warn = el.dataset.warn ? Date.parse(el.dataset.warn) : due - atRiskMillis;
      const left = due - now;
      el.textContent = left >= 0 ? "due in " + span(left) : "breached " + span(-left) + " ago";
      el.classList.toggle("sla-breached", left < 0);
      el.classList.toggle("sla-at-risk", left >= 0 && now >= warn);
    }
  }

  // Live regions -----------------------------------------------------------------------------
  // A change is {tickets: [...], many: bool}; null stands for "anything may have changed".
  function merge(a, b) {
    if (a === undefined) return b;
    if (!a || !b || a.many || b.many) return null;
    return { many: false, tickets: a.tickets.concat(b.tickets) };
  }

  function concerns(region, change) {
    if (region.dataset.live !== "ticket" || !change || change.many) return true;
    return change.tickets.includes((region.dataset.ticketId || "").toLowerCase());
  }

  function dirty(region) {
    for (const field of region.querySelectorAll("input, textarea, select")) {
      if (field.type === "checkbox" || field.type === "radio") {
        if (field.checked !== field.defaultChecked) return true;
      } else if (field.tagName === "SELECT") {
        for (const option of field.options) if (option.selected !== option.defaultSelected) return true;
      } else if (field.value !== field.defaultValue) {
        return true;
      }
    }
    return false;
  }

  function busyWith(region) {
    const active = document.activeElement;
    return (active && active !== body && region.contains(active)) || dirty(region);
  }

  let loading = false, queued, held;

  function refresh(change) {
    if (loading) { queued = merge(queued, change); return; }
    const regions = [...document.querySelectorAll("[data-live][id]")].filter((r) => concerns(r, change));
    if (!regions.length) return;
    loading = true;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Partial": "1" } })
      .then((response) => (response.ok && !response.redirected ? response.text() : null))
      .then((html) => { if (html !== null) replace(regions, new DOMParser().parseFromString(html, "text/html"), change); })
      .catch(() => {})
      .finally(() => {
        loading = false;
        if (queued !== undefined) { const next = queued; queued = undefined; refresh(next); }
      });
  }

  function replace(regions, fresh, change) {
    for (const region of regions) {
      const update = fresh.getElementById(region.id);
      if (!update || !update.hasAttribute("data-live")) continue;
      // Never under the agent's hands: the focused element's region, or one with typed input, waits.
      if (busyWith(region)) { held = merge(held, change); continue; }
      const node = document.importNode(update, true);
      region.replaceWith(node);
      localize(node);
    }
  }

  // A region that waited for the agent is refreshed once focus leaves it.
  document.addEventListener("focusout", () => setTimeout(() => {
    if (held === undefined) return;
    const waiting = [...document.querySelectorAll("[data-live][id]")].filter((r) => concerns(r, held));
    if (waiting.some(busyWith)) return;
    const change = held;
    held = undefined;
    refresh(change);
  }, 0));

  // The hub banner ---------------------------------------------------------------------------
  function health(state) {
    const banner = document.getElementById("banner");
    if (!banner || !state) return;
    banner.textContent = state.message;
    banner.hidden = !state.stale;
  }

  // The event stream -------------------------------------------------------------------------
  let source = null, retry = null;

  function connect() {
    clearTimeout(retry);
    if (source || document.hidden) return;
    source = new EventSource("/api/events");
    source.addEventListener("hello", (e) => {
      const data = JSON.parse(e.data);
      // Changes made between this page's rendering and the stream's start.
      if (seen !== null && String(data.version) !== seen) refresh(null);
      seen = String(data.version);
      health(data.health);
    });
    source.addEventListener("change", (e) => {
      const data = JSON.parse(e.data);
      seen = String(data.version);
      refresh(data);
    });
    source.addEventListener("health", (e) => health(JSON.parse(e.data)));
    source.addEventListener("error", () => {
      // A network failure reconnects by itself; a refusal (signed out, too many pages) closes.
      if (source && source.readyState === EventSource.CLOSED) { source = null; retry = setTimeout(connect, 15000); }
    });
  }

  function disconnect() {
    if (source) { source.close(); source = null; }
  }

  localize(document);
  setInterval(tick, 1000);
  // Signed-in pages only; a hidden tab gives its connection back (browsers allow few per host).
  if (body.hasAttribute("data-csrf")) {
    document.addEventListener("visibilitychange", () => (document.hidden ? disconnect() : connect()));
    connect();
  }
})();
"""#
}
