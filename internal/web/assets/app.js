// GoLVS status page: polls api/status every 2 s (the rate estimator's
// interval) and renders the services, real servers, rates with their
// recent history, VRRP and sync state. Standard DOM only; no inline code
// (the page's Content-Security-Policy forbids it).
"use strict";

(function () {
  const POLL_MS = 2000;      // the estimator's interval: rates change no faster
  const MAX_SAMPLES = 150;   // as the server's history: 5 minutes at 2 s
  const SVG = "http://www.w3.org/2000/svg";

  const state = {
    token: tokenFromPage(),
    since: 0,                // Unix ms of the newest history sample held
    totals: emptyHist(),
    hist: new Map(),         // service id -> history
    timer: null,
    inFlight: false,
    lastOK: 0,
  };

  function tokenFromPage() {
    const q = new URLSearchParams(location.search).get("token");
    if (q) {
      try { sessionStorage.setItem("golvs-token", q); } catch (e) { /* storage off */ }
      return q;
    }
    try { return sessionStorage.getItem("golvs-token") || ""; } catch (e) { return ""; }
  }

  function emptyHist() {
    return { t: [], cps: [], in_pps: [], out_pps: [], in_bps: [], out_bps: [] };
  }

  function mergeHist(dst, src) {
    if (!src || !src.t) return;
    const last = dst.t.length ? dst.t[dst.t.length - 1] : 0;
    for (let i = 0; i < src.t.length; i++) {
      if (src.t[i] <= last) continue;
      for (const k of Object.keys(dst)) dst[k].push(src[k][i]);
    }
    const extra = dst.t.length - MAX_SAMPLES;
    if (extra > 0) for (const k of Object.keys(dst)) dst[k].splice(0, extra);
  }

  // ---- formatting ----

  const nf = new Intl.NumberFormat(undefined);

  function si(v, unit) {
    unit = unit || "";
    const a = Math.abs(v);
    const steps = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (const [f, p] of steps) {
      if (a >= f) {
        const x = v / f;
        return (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)) + " " + p + unit;
      }
    }
    return String(Math.round(v)) + (unit ? " " + unit : "");
  }
  const bits = (bytesPerSec) => si(bytesPerSec * 8, "bit/s");
  const bytes = (n) => si(n, "B");
  const count = (n) => nf.format(n);

  function ago(iso) {
    if (!iso) return "";
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 60) return Math.round(s) + "s ago";
    if (s < 3600) return Math.round(s / 60) + "m ago";
    if (s < 86400) return (s / 3600).toFixed(1) + "h ago";
    return (s / 86400).toFixed(1) + "d ago";
  }

  function duration(sec) {
    if (sec < 1) return Math.round(sec * 1000) + " ms";
    if (sec < 120) return sec.toFixed(1) + " s";
    if (sec < 7200) return Math.round(sec / 60) + " min";
    return (sec / 3600).toFixed(1) + " h";
  }

  // ---- DOM helpers ----

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "class") e.className = v;
        else if (k === "text") e.textContent = v;
        else e.setAttribute(k, v === true ? "" : v);
      }
    }
    for (const k of kids.flat()) {
      if (k === null || k === undefined || k === false) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }

  // spark draws one or two series (in, out) as a small area chart.
  function spark(t, seriesIn, seriesOut, cls) {
    const W = 120, H = 30;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark " + (cls || ""));
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("aria-hidden", "true");
    const base = document.createElementNS(SVG, "line");
    base.setAttribute("class", "base");
    base.setAttribute("x1", 0); base.setAttribute("x2", W);
    base.setAttribute("y1", H); base.setAttribute("y2", H);
    svg.append(base);
    const n = t.length;
    if (n < 2) return svg;
    const t0 = t[0], t1 = t[n - 1], span = Math.max(t1 - t0, 1);
    // Scale to the last 5 minutes when the history is shorter, so that
    // graphs start at the right and fill as samples come.
    const window = Math.max(span, MAX_SAMPLES * POLL_MS);
    let top = 1;
    for (const s of [seriesIn, seriesOut]) if (s) for (const v of s) top = Math.max(top, v);
    const x = (ti) => W - ((t1 - ti) / window) * W;
    const y = (v) => H - (v / top) * (H - 2);
    const draw = (s, which) => {
      if (!s) return;
      let pts = "";
      for (let i = 0; i < n; i++) pts += `${x(t[i]).toFixed(1)},${y(s[i]).toFixed(1)} `;
      const area = document.createElementNS(SVG, "polygon");
      area.setAttribute("class", "area-" + which);
      area.setAttribute("points", `${x(t[0]).toFixed(1)},${H} ${pts}${W},${H}`);
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("class", "line-" + which);
      line.setAttribute("points", pts.trim());
      svg.append(area, line);
    };
    draw(seriesIn, "in");
    draw(seriesOut, "out");
    return svg;
  }

  // ---- rendering ----

  function card(label, value, unit, sub, graph) {
    return h("div", { class: "card" },
      h("div", { class: "label", text: label }),
      h("div", { class: "value" }, value, unit ? h("small", { text: unit }) : null),
      sub ? h("div", { class: "sub" }, sub) : null,
      graph || null);
  }

  function renderSummary(st) {
    const t = st.totals, hs = state.totals;
    let active = 0, inact = 0, up = 0, down = 0;
    for (const s of st.services) for (const r of s.servers) {
      active += r.active_conns; inact += r.inact_conns;
      if (r.health) { if (r.health.up) up++; else down++; }
    }
    const cards = [
      card("Connections / s", count(t.cps), "", `${count(t.conns)} scheduled`, spark(hs.t, hs.cps, null)),
      card("Packets / s", h("span", { "data-total": "pps" }, si(t.in_pps)), "in",
        h("span", null, h("span", { class: "key-out" }, si(t.out_pps) + " out"), ` · ${si(t.in_pkts)} / ${si(t.out_pkts)} total`),
        spark(hs.t, hs.in_pps, hs.out_pps)),
      card("Throughput", bits(t.in_bps), "in",
        h("span", null, h("span", { class: "key-out" }, bits(t.out_bps) + " out"), ` · ${bytes(t.in_bytes)} / ${bytes(t.out_bytes)}`),
        spark(hs.t, hs.in_bps, hs.out_bps)),
      card("Connections", count(active), "active", `${count(inact)} inactive`),
    ];
    if (up + down > 0) {
      const c = card("Real servers", count(up), "up", down ? `${down} down` : "all up");
      if (down) c.querySelector(".sub").classList.add("key-out");
      cards.push(c);
    }
    if (st.conntable) {
      const ct = st.conntable, used = ct.conns + ct.templates;
      const pct = ct.limit ? (100 * used) / ct.limit : 0;
      const bar = h("div", { class: "bar" + (pct > 90 ? " bad" : pct > 70 ? " warn" : "") }, h("span"));
      bar.firstChild.style.width = Math.min(100, pct).toFixed(1) + "%";
      cards.push(card("Connection table", count(ct.conns), "conns",
        `${count(ct.templates)} templates · limit ${count(ct.limit)}${ct.full_drops ? " · " + count(ct.full_drops) + " refused" : ""}`, bar));
    }
    if (st.dataplane) {
      const d = st.dataplane;
      const worst = Object.entries(d.drops || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]).slice(0, 3)
        .map(([r, n]) => `${r} ${si(n)}`).join(", ");
      cards.push(card("Data plane", si(d.transmitted), "sent",
        `${si(d.to_host)} to host · ${si(d.dropped)} dropped${worst ? " (" + worst + ")" : ""}`));
    }
    document.getElementById("summary").replaceChildren(...cards);
  }

  function metric(key, value, graph, dataName) {
    return h("div", { class: "metric" },
      h("div", { class: "k" }, key),
      h("div", { class: "v", "data-rate": dataName }, value),
      graph);
  }

  function inOut(a, b) {
    return [h("span", null, a), " / ", h("span", { class: "o" }, b)];
  }

  function healthCell(r) {
    const hl = r.health;
    if (!hl) return h("td", { class: "health muted", text: "—" });
    const detail = [hl.checker, hl.last_result].filter(Boolean).join(": ");
    const extra = [hl.checker];
    if (hl.mean_latency) extra.push("avg " + duration(hl.mean_latency));
    if (hl.last_change) extra.push((hl.up ? "up " : "down ") + ago(hl.last_change));
    if (hl.failures) extra.push(`${count(hl.failures)}/${count(hl.checks)} failed`);
    return h("td", { class: "health", title: detail + (hl.last_check ? " (checked " + ago(hl.last_check) + ")" : "") },
      h("div", { class: "health-line" },
        h("span", { class: "dot " + (hl.up ? "up" : "down") }),
        h("strong", { text: hl.up ? "UP" : "DOWN" }),
        h("span", { class: "detail", text: hl.last_result || "" })),
      h("div", { class: "detail", text: extra.filter(Boolean).join(" · ") }));
  }

  function num(v, fmt) {
    return h("td", { class: v ? "" : "zero" }, fmt ? fmt(v) : count(v));
  }

  // pair is an "in" over "out" cell.
  function pair(a, b, fmt) {
    return h("td", { class: "pair" + (a || b ? "" : " zero") },
      h("div", { class: a ? "key-in" : "zero", text: fmt(a) }),
      h("div", { class: b ? "key-out" : "zero", text: fmt(b) }));
  }

  function serverRow(r, maxConns) {
    const conns = r.active_conns + r.inact_conns;
    const load = h("span", { class: "load", title: "share of the service's connections" }, h("span"));
    load.firstChild.style.width = maxConns ? ((100 * conns) / maxConns).toFixed(0) + "%" : "0";
    const cls = [r.health && !r.health.up ? "down" : "", r.in_table ? "" : "absent"].filter(Boolean).join(" ");
    const tags = [
      r.in_table ? null : h("span", { class: "tag bad", title: "taken out of the table by its health checker", text: "not in table" }),
      r.in_table && r.weight === 0 ? h("span", { class: "tag warn", title: "weight 0: no new connections", text: "quiesced" }) : null,
      r.overloaded ? h("span", { class: "tag warn", title: "upper connection threshold reached", text: "overloaded" }) : null,
    ].filter(Boolean);
    const weight = r.in_table ? h("td", { class: r.weight ? "" : "key-out", text: String(r.weight) }) : h("td", { class: "muted", text: "—" });
    return h("tr", { class: cls, "data-server": r.server },
      h("td", { class: "server" }, r.server, tags.length ? h("div", { class: "tags" }, tags) : null),
      h("td", { class: "l", text: r.in_table ? r.method : "—" }),
      weight,
      healthCell(r),
      h("td", null, count(r.active_conns), load),
      num(r.inact_conns),
      num(r.persist_conns),
      num(r.traffic.cps),
      pair(r.traffic.in_pps, r.traffic.out_pps, si),
      pair(r.traffic.in_bps, r.traffic.out_bps, bits),
      h("td", { class: "muted" }, count(r.traffic.conns)));
  }

  function renderService(s) {
    const hs = state.hist.get(s.id) || emptyHist();
    const t = s.traffic;
    const title = h("div", { class: "svc-title" },
      h("span", { class: "svc-name", text: s.name }),
      s.in_table ? h("span", { class: "tag sched", title: "scheduler", text: s.scheduler }) : h("span", { class: "tag bad", text: "not in table" }),
      (s.flags || []).map((f) => h("span", { class: "tag", text: f })));
    let up = 0, total = 0;
    for (const r of s.servers) if (r.health) { total++; if (r.health.up) up++; }
    if (total) title.append(h("span", { class: "tag " + (up === total ? "ok" : up ? "warn" : "bad"), text: `${up}/${total} up` }));

    const rates = h("div", { class: "svc-rates" },
      metric("conn/s", count(t.cps), spark(hs.t, hs.cps, null), "cps"),
      metric(h("span", null, h("span", { class: "key-in", text: "in" }), " / ", h("span", { class: "key-out", text: "out" }), " pkt/s"),
        inOut(si(t.in_pps), si(t.out_pps)), spark(hs.t, hs.in_pps, hs.out_pps), "pps"),
      metric(h("span", null, h("span", { class: "key-in", text: "in" }), " / ", h("span", { class: "key-out", text: "out" }), " bit/s"),
        inOut(bits(t.in_bps), bits(t.out_bps)), spark(hs.t, hs.in_bps, hs.out_bps), "bps"));

    let body;
    if (!s.servers.length) {
      body = h("div", { class: "empty", text: "No real servers." });
    } else {
      let maxConns = 0;
      for (const r of s.servers) maxConns = Math.max(maxConns, r.active_conns + r.inact_conns);
      body = h("div", { class: "table-wrap" }, h("table", null,
        h("thead", null, h("tr", null,
          h("th", { text: "Real server" }), h("th", { class: "l", text: "Forward" }), h("th", { text: "Weight" }),
          h("th", { class: "l", text: "Health" }), h("th", { title: "ipvsadm ActiveConn", text: "Active" }), h("th", { title: "ipvsadm InActConn", text: "Inactive" }),
          h("th", { title: "persistence templates (ipvsadm PersistConn)", text: "Persist" }), h("th", { text: "Conn/s" }),
          h("th", null, "Pkt/s ", h("span", { class: "key-in", text: "in" }), "/", h("span", { class: "key-out", text: "out" })),
          h("th", null, "Bit/s ", h("span", { class: "key-in", text: "in" }), "/", h("span", { class: "key-out", text: "out" })),
          h("th", { title: "connections scheduled since the last ipvsadm -Z", text: "Conns" }))),
        h("tbody", null, s.servers.map((r) => serverRow(r, maxConns)))));
    }
    return h("article", { class: "svc panel" + (s.in_table ? "" : " absent"), "data-service": s.id },
      h("div", { class: "svc-head" }, title, rates), body);
  }

  function renderServices(st) {
    const root = document.getElementById("services");
    document.getElementById("svc-count").textContent =
      `${st.services.length} service${st.services.length === 1 ? "" : "s"}`;
    if (!st.services.length) {
      root.replaceChildren(h("div", { class: "panel empty", text: "No virtual services. Add one with ipvsadm -A or in keepalived.conf." }));
      return;
    }
    root.replaceChildren(...st.services.map(renderService));
  }

  function renderVRRP(st) {
    const root = document.getElementById("vrrp");
    const badges = document.getElementById("ha-badges");
    if (!st.vrrp || !st.vrrp.length) {
      root.replaceChildren(h("div", { class: "empty", text: "VRRP is not running on this director." }));
      badges.replaceChildren();
      return;
    }
    badges.replaceChildren(...st.vrrp.map((v) =>
      h("span", { class: "state " + v.state, title: `VRRP ${v.name} (VRID ${v.vrid})`, text: `${v.name}: ${v.state}` })));
    root.replaceChildren(h("div", { class: "table-wrap" }, h("table", null,
      h("thead", null, h("tr", null, h("th", { text: "Instance" }), h("th", { class: "l", text: "State" }),
        h("th", { text: "Priority" }), h("th", { class: "l", text: "Virtual IPs" }), h("th", { title: "state transitions", text: "Changes" }),
        h("th", { text: "Last change" }))),
      h("tbody", null, st.vrrp.map((v) => h("tr", { "data-vrrp": v.name },
        h("td", null, h("strong", { text: v.name }), h("div", { class: "muted", text: [v.interface, "VRID " + v.vrid, v.sync_group ? "group " + v.sync_group : ""].filter(Boolean).join(" · ") })),
        h("td", { class: "l" }, h("span", { class: "state " + v.state, text: v.state })),
        h("td", { text: String(v.priority) }),
        h("td", { class: "l mono", text: (v.vips || []).join(", ") }),
        h("td", { text: count(v.transitions) }),
        h("td", { class: "muted", text: ago(v.last_transition) || "—" })))))));
  }

  function renderSync(st) {
    const root = document.getElementById("sync");
    if (!st.sync || !st.sync.length) {
      root.replaceChildren(h("div", { class: "empty", text: "No connection-sync daemon is running." }));
      return;
    }
    root.replaceChildren(h("div", { class: "table-wrap" }, h("table", null,
      h("thead", null, h("tr", null, h("th", { text: "Role" }), h("th", { text: "Sent" }), h("th", { text: "Received" }),
        h("th", { class: "l", text: "Rejected" }), h("th", { text: "Lag" }), h("th", { text: "Last message" }))),
      h("tbody", null, st.sync.map((s) => {
        const rej = Object.entries(s.rejected || {}).filter(([, n]) => n > 0);
        return h("tr", { "data-sync": s.role },
          h("td", null, h("strong", { text: s.role }), h("div", { class: "muted", text: `syncid ${s.syncid}${s.interface ? " · " + s.interface : ""}` })),
          h("td", null, count(s.sent), h("div", { class: "muted", text: count(s.sent_conns) + " conns" })),
          h("td", null, count(s.received), h("div", { class: "muted", text: count(s.received_conns) + " conns" })),
          h("td", { class: "l" + (rej.length ? "" : " muted"), text: rej.length ? rej.map(([r, n]) => `${r} ${count(n)}`).join(", ") : "none" }),
          h("td", { text: duration(s.lag) }),
          h("td", { class: "muted", text: ago(s.last_message) || "—" }));
      })))));
  }

  function render(st) {
    document.getElementById("version").textContent =
      st.version + (st.started ? " · up " + ago(st.started).replace(" ago", "") : "");
    renderSummary(st);
    renderServices(st);
    renderVRRP(st);
    renderSync(st);
  }

  // ---- polling ----

  function setLive(ok, text) {
    const dot = document.getElementById("live-dot");
    dot.className = "dot " + (ok ? "ok" : "bad");
    document.getElementById("updated").textContent = text;
  }

  function showAuth(show) {
    document.getElementById("auth").hidden = !show;
    if (show) document.getElementById("content").hidden = true;
  }

  async function poll() {
    if (state.inFlight) return;
    state.inFlight = true;
    try {
      const headers = {};
      if (state.token) headers["Authorization"] = "Bearer " + state.token;
      const url = "api/status" + (state.since ? "?since=" + state.since : "");
      const res = await fetch(url, { headers, cache: "no-store" });
      if (res.status === 401) {
        showAuth(true);
        setLive(false, "token needed");
        return;
      }
      if (!res.ok) throw new Error("HTTP " + res.status);
      const st = await res.json();
      showAuth(false);
      mergeHist(state.totals, st.totals_history);
      const ids = new Set();
      for (const s of st.services) {
        ids.add(s.id);
        let hs = state.hist.get(s.id);
        if (!hs) { hs = emptyHist(); state.hist.set(s.id, hs); }
        mergeHist(hs, s.history);
      }
      for (const id of [...state.hist.keys()]) if (!ids.has(id)) state.hist.delete(id);
      if (state.totals.t.length) state.since = state.totals.t[state.totals.t.length - 1];
      render(st);
      document.getElementById("content").hidden = false;
      state.lastOK = Date.now();
      setLive(true, "live · " + new Date(st.time).toLocaleTimeString());
    } catch (err) {
      setLive(false, "update failed (" + err.message + "), retrying" +
        (state.lastOK ? " · last " + ago(new Date(state.lastOK).toISOString()) : ""));
    } finally {
      state.inFlight = false;
    }
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(async () => {
      if (!document.hidden) await poll();
      schedule();
    }, POLL_MS);
  }

  function linkToken() {
    if (!state.token) return;
    const q = "?token=" + encodeURIComponent(state.token);
    document.getElementById("metrics-link").setAttribute("href", "metrics" + q);
    document.getElementById("json-link").setAttribute("href", "api/status" + q);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("auth-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      state.token = document.getElementById("auth-token").value.trim();
      try { sessionStorage.setItem("golvs-token", state.token); } catch (e) { /* storage off */ }
      linkToken();
      poll();
    });
    document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
    linkToken();
    poll().then(schedule);
  });
})();
