// The semcache dashboard: polls the admin overview with the token from this tab.
// No libraries: the charts are plain SVG drawn here.
"use strict";

(function () {
  const ADMIN = document.querySelector('meta[name="semcache-admin"]').content;
  const KEY = "semcache-admin-token";
  const POLL_MS = 5000;
  const SVG = "http://www.w3.org/2000/svg";
  let timer = null;

  // A #token=... fragment is taken once, then wiped from the address bar and history.
  function tokenFromFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    const token = params.get("token");
    if (token) {
      sessionStorage.setItem(KEY, token);
      history.replaceState(null, "", location.pathname + location.search);
    }
  }

  function status(text, error) {
    const el = document.getElementById("status");
    el.textContent = text;
    el.classList.toggle("error", Boolean(error));
  }

  function showLogin(message) {
    document.getElementById("board").hidden = true;
    document.getElementById("login").hidden = false;
    status(message, true);
  }

  async function poll() {
    const token = sessionStorage.getItem(KEY);
    if (!token) { showLogin("admin token needed"); return; }
    let response;
    try {
      response = await fetch(ADMIN + "/overview", {
        headers: { Authorization: "Bearer " + token },
        cache: "no-store",
        credentials: "omit",
      });
    } catch (err) {
      status("proxy unreachable: " + err.message, true);
      schedule();
      return;
    }
    if (response.status === 401) {
      sessionStorage.removeItem(KEY);
      showLogin("the admin token was refused");
      return;
    }
    if (!response.ok) {
      status("overview failed: HTTP " + response.status, true);
      schedule();
      return;
    }
    render(await response.json());
    document.getElementById("login").hidden = true;
    document.getElementById("board").hidden = false;
    status("updated " + new Date().toLocaleTimeString());
    document.body.dataset.loaded = "true";
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
  }

  // -- formatting ------------------------------------------------------------

  const count = (n) => String(Math.round(n));
  const percent = (x) => (x === null ? "–" : (100 * x).toFixed(1) + "%");
  const ms = (s) => (s === null || s === undefined ? "–" : (1000 * s).toFixed(1) + " ms");
  const usd = (x) => "$" + (x < 1 ? x.toFixed(6) : x.toFixed(2));
  const seconds = (s) => s.toFixed(2) + " s";
  function bytes(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  }
  const ratio = (a, b) => (b > 0 ? a / b : null);

  function set(name, text) {
    for (const el of document.querySelectorAll('[data-figure="' + name + '"]')) {
      el.textContent = text;
    }
  }

  function fillTable(id, rows) {
    const body = document.querySelector("#" + id + " tbody");
    body.replaceChildren();
    for (const cells of rows) {
      const tr = document.createElement("tr");
      for (const cell of cells) {
        const td = document.createElement("td");
        const [text, cls] = Array.isArray(cell) ? cell : [cell, null];
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  // -- the page ---------------------------------------------------------------

  function render(data) {
    const r = data.requests;
    set("hits", count(r.hit));
    set("misses", count(r.miss));
    set("bypass", count(r.bypass));
    set("hit_rate", percent(ratio(r.hit, r.hit + r.miss)));
    set("served_share", percent(ratio(r.hit, r.hit + r.miss + r.bypass)));
    set("usd_saved", usd(data.saved.usd));
    set("tokens_saved", count(data.saved.tokens));
    set("seconds_saved", seconds(data.saved.seconds));
    set("hit_mean", ms(data.latency.hit.mean));
    set("hit_p95", ms(data.latency.hit.p95));
    set("miss_mean", ms(data.latency.miss.mean));
    set("miss_p95", ms(data.latency.miss.p95));
    set("false_hit_rate", percent(data.false_hit_rate));
    set("upstream_breakers_open", count(data.upstream_breakers_open));
    set("model_id", data.model_id || "–");
    set("threshold", data.threshold === null ? "–" : String(data.threshold));
    set("slot", String(data.history.slot_seconds));

    fillTable("breakers", Object.entries(data.breakers).map(
      ([name, state]) => [name, [state, "state-" + state]]));
    fillTable("stores", [
      ["vectors", count0(data.stores.vectors), bytes(data.stores.vectors_bytes)],
      ["responses", count0(data.stores.entries), bytes(data.stores.entries_bytes)],
    ]);
    const rules = Object.entries(data.rejections).sort((a, b) => b[1] - a[1]);
    fillTable("rejections", rules.length ? rules.map(([rule, n]) => [rule, count(n)])
      : [["none yet", ""]]);
    fillTable("partitions", data.saved.top.map((p) => [
      p.model, p.route, p.tenant, count(p.hits), count(p.tokens), usd(p.usd),
      seconds(p.seconds)]));

    const slots = data.history.slots;
    drawBars("chart-rate", slots, [
      { cls: "hit", value: (s) => ratio(s.hit, s.hit + s.miss) },
    ], 1, percent);
    drawBars("chart-latency", slots, [
      { cls: "hit", value: (s) => (s.hit ? s.hit_seconds / s.hit : null) },
      { cls: "miss", value: (s) => (s.miss ? s.miss_seconds / s.miss : null) },
    ], null, ms);
  }

  const count0 = (n) => (n === null || n === undefined ? "–" : count(n));

  // One bar per slot and series (side by side); a slot with no traffic has none.
  function drawBars(id, slots, series, max, label) {
    const svg = document.getElementById(id);
    svg.replaceChildren();
    const W = 600, H = 160, TOP = 16;
    if (max === null) {
      max = 0;
      for (const s of slots) for (const bar of series) {
        const v = bar.value(s);
        if (v !== null && v > max) max = v;
      }
    }
    const axis = document.createElementNS(SVG, "text");
    axis.setAttribute("x", "4"); axis.setAttribute("y", "12");
    axis.setAttribute("font-size", "10"); axis.setAttribute("fill", "#6b7482");
    axis.textContent = max > 0 ? "max " + label(max) : "no traffic yet";
    svg.appendChild(axis);
    if (!(max > 0)) return;
    const step = W / slots.length;
    const width = Math.max(step / series.length, 2);
    slots.forEach((s, i) => {
      series.forEach((bar, j) => {
        const v = bar.value(s);
        if (v === null) return;
        const h = Math.max((H - TOP) * (v / max), 1);
        const rect = document.createElementNS(SVG, "rect");
        const base = Math.min(i * step, W - series.length * width);
        rect.setAttribute("x", (base + j * width).toFixed(2));
        rect.setAttribute("y", (H - h).toFixed(2));
        rect.setAttribute("width", width.toFixed(2));
        rect.setAttribute("height", h.toFixed(2));
        rect.setAttribute("fill", bar.cls === "hit" ? "#2a9d5c" : "#d0623a");
        const tip = document.createElementNS(SVG, "title");
        tip.textContent = new Date(s.start * 1000).toLocaleTimeString() + ": " + label(v);
        rect.appendChild(tip);
        svg.appendChild(rect);
      });
    });
  }

  document.getElementById("login").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("token");
    sessionStorage.setItem(KEY, input.value);
    input.value = "";
    poll();
  });

  tokenFromFragment();
  poll();
})();
