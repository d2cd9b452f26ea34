// Strata's live cache dashboard: polls /dashboard/data every second, keeps five minutes of
// history in the page, and draws rates, ratios and percentiles from the differences
// between snapshots (the server only hands out cumulative counters, as /metrics does).
(() => {
  "use strict";

  const POLL_MS = 1000;
  const WINDOW_S = 5; // ratios, rates and percentiles are over the last few seconds
  const HISTORY_S = 300;
  const TOKEN_KEY = "strata.dashboard.token";
  const TIERS = ["response", "l1", "l2"];
  const TIER_NAMES = { response: "response", l1: "L1 memory", l2: "L2 Redis" };
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(`--${name}`).trim();
  const COLORS = {
    response: color("response"),
    l1: color("l1"),
    l2: color("l2"),
    requests: color("accent"),
    sql: "#94a3b8",
    p50: "#10b981",
    p95: "#f59e0b",
    p99: "#ef4444",
  };

  const $ = (id) => document.getElementById(id);
  const snapshots = []; // raw /dashboard/data answers, oldest first
  const points = { t: [], response: [], l1: [], l2: [], rate: [], sqlRate: [], p50: [], p95: [], p99: [] };
  const charts = {};
  let paused = false;
  let timer = null;
  let last = null;

  // -- formatting ----------------------------------------------------------------------

  const integer = (n) => (n == null ? "–" : Math.round(n).toLocaleString("en-US"));
  const percent = (r) => (r == null ? "–" : `${(r * 100).toFixed(1)}%`);
  const rate = (n) => (n == null ? "–" : n === 0 ? "0" : n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString("en-US"));
  function millis(seconds) {
    if (seconds == null) return "–";
    if (seconds === 0) return "0";
    const ms = seconds * 1000;
    if (ms < 1) return `${ms.toFixed(2)} ms`;
    if (ms < 10) return `${ms.toFixed(1)} ms`;
    return `${Math.round(ms)} ms`;
  }
  const clock = (t) => new Date(t * 1000).toLocaleTimeString("en-GB", { hour12: false });

  function show(id, text, value) {
    const el = $(id);
    el.textContent = text;
    if (value !== undefined) el.dataset.value = value == null ? "" : String(value);
  }

  function pill(id, text, kind) {
    const el = $(id);
    el.textContent = text;
    el.className = `pill ${kind || ""}`;
  }

  // -- arithmetic on snapshots -------------------------------------------------------

  const bound = (le) => (le === "+Inf" ? Infinity : Number(le));

  // Prometheus's histogram_quantile over cumulative [[upper bound, count], ...].
  function quantile(q, buckets) {
    if (!buckets.length) return null;
    const total = buckets[buckets.length - 1][1];
    if (total <= 0) return null;
    const rank = q * total;
    let lower = 0;
    let below = 0;
    for (const [le, count] of buckets) {
      const upper = bound(le);
      if (count >= rank) {
        if (!Number.isFinite(upper)) return lower;
        if (count === below) return upper;
        return lower + ((upper - lower) * (rank - below)) / (count - below);
      }
      lower = upper;
      below = count;
    }
    return lower;
  }

  // The snapshot to measure a window from: the oldest one at most WINDOW_S old.
  function base(now) {
    for (const snap of snapshots) {
      if (snap !== now && now.timestamp - snap.timestamp <= WINDOW_S + 0.25) return snap;
    }
    return snapshots.length > 1 ? snapshots[snapshots.length - 2] : null;
  }

  function windowed(now) {
    const then = base(now);
    if (!then) return null;
    const dt = now.timestamp - then.timestamp;
    const requests = now.requests.total - then.requests.total;
    if (dt <= 0 || requests < 0) return null; // a restart: counters went back to zero
    const out = { dt, requests, rate: requests / dt, sqlRate: (now.sql_statements - then.sql_statements) / dt };
    for (const name of TIERS) {
      const hits = now.tiers[name].hits - then.tiers[name].hits;
      const misses = now.tiers[name].misses - then.tiers[name].misses;
      out[name] = hits + misses > 0 ? hits / (hits + misses) : null;
    }
    const earlier = new Map(then.latency.buckets.map(([le, n]) => [String(le), n]));
    const buckets = now.latency.buckets.map(([le, n]) => [le, n - (earlier.get(String(le)) || 0)]);
    for (const [name, q] of [["p50", 0.5], ["p95", 0.95], ["p99", 0.99]]) {
      out[name] = requests > 0 ? quantile(q, buckets) : null;
    }
    return out;
  }

  // -- charts --------------------------------------------------------------------------

  function axes(format) {
    const stroke = color("muted");
    const grid = { stroke: "#eef2f7", width: 1 };
    return [
      { stroke, grid, ticks: { show: false }, font: "11px system-ui, sans-serif" },
      { stroke, grid, ticks: { show: false }, size: 56, font: "11px system-ui, sans-serif", values: (u, vals) => vals.map(format) },
    ];
  }

  function timeRange(u, min, max) {
    const end = max == null ? Date.now() / 1000 : max;
    return [Math.min(min == null ? end : min, end - 30), end];
  }

  function line(label, stroke, format, extra) {
    return { label, stroke, width: 2, points: { show: false }, value: (u, v) => format(v), ...extra };
  }

  function makeChart(id, series, options) {
    const el = $(id);
    const chart = new uPlot(
      {
        width: Math.max(el.clientWidth, 300),
        height: options.height || 200,
        series: [{ value: (u, v) => (v == null ? "–" : clock(v)) }, ...series],
        // At least the last 30 s on the x axis, so a fresh page does not stretch 2 points.
        scales: { x: { time: true, range: timeRange }, y: options.y || {} },
        axes: axes(options.format),
        cursor: { drag: { x: false, y: false } },
        legend: { live: false },
      },
      [[], ...series.map(() => [])],
      el,
    );
    new ResizeObserver(() => chart.setSize({ width: Math.max(el.clientWidth, 300), height: options.height || 200 })).observe(el);
    return chart;
  }

  function setUpCharts() {
    const pct = (v) => (v == null ? "–" : `${Math.round(v * 100)}%`);
    charts.ratio = makeChart(
      "chart-ratio",
      TIERS.map((name) => line(TIER_NAMES[name], COLORS[name], percent)),
      { format: pct, y: { range: [0, 1.04] }, height: 220 },
    );
    charts.rate = makeChart(
      "chart-rate",
      [
        line("requests/s", COLORS.requests, rate, { fill: "rgba(37, 99, 235, 0.08)" }),
        line("SQL statements/s", COLORS.sql, rate, { dash: [4, 4] }),
      ],
      { format: (v) => (v == null ? "" : rate(v)), y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    );
    charts.latency = makeChart(
      "chart-latency",
      ["p50", "p95", "p99"].map((name) => line(name, COLORS[name], millis)),
      { format: (v) => (v == null ? "" : millis(v)), y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 0.001] } },
    );
  }

  function redraw() {
    charts.ratio.setData([points.t, points.response, points.l1, points.l2]);
    charts.rate.setData([points.t, points.rate, points.sqlRate]);
    charts.latency.setData([points.t, points.p50, points.p95, points.p99]);
  }

  function record(now, win) {
    if (!win) return;
    points.t.push(now.timestamp);
    for (const key of ["response", "l1", "l2", "rate", "sqlRate", "p50", "p95", "p99"]) points[key].push(win[key]);
    while (points.t.length && now.timestamp - points.t[0] > HISTORY_S) {
      for (const key of Object.keys(points)) points[key].shift();
    }
    redraw();
  }

  // -- tables --------------------------------------------------------------------------

  function cell(text, className, title) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (text instanceof Node) td.append(text);
    else td.textContent = text;
    if (title) td.title = title;
    return td;
  }

  function fill(tableId, rows, empty, columns) {
    const body = $(tableId).tBodies[0];
    body.replaceChildren();
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = cell(empty, "empty");
      td.colSpan = columns;
      tr.append(td);
      body.append(tr);
      return;
    }
    for (const cells of rows) {
      const tr = document.createElement("tr");
      tr.append(...cells);
      body.append(tr);
    }
  }

  function tags(list) {
    const span = document.createElement("span");
    for (const tag of list.slice(0, 6)) {
      const t = document.createElement("span");
      t.className = "tag";
      t.textContent = tag;
      span.append(t);
    }
    if (list.length > 6) {
      const more = document.createElement("span");
      more.className = "more";
      more.textContent = `+${list.length - 6} more`;
      more.title = list.slice(6).join("\n");
      span.append(more);
    }
    return span;
  }

  function source(name) {
    const span = document.createElement("span");
    span.className = `source ${name}`;
    span.textContent = name;
    return span;
  }

  // -- rendering -----------------------------------------------------------------------

  function render(now) {
    const win = windowed(now);
    const cache = now.cache;
    pill("env", now.env, now.env === "dev" ? "warn" : "");
    const status = { ok: "good", "memory-only": "warn", degraded: "bad", disabled: "bad" }[cache.status];
    pill("cache-status", `cache ${cache.status}`, status);
    pill("breaker", `breaker ${cache.breaker_state}`, cache.breaker_open ? "bad" : "good");

    show("requests-total", integer(now.requests.total), now.requests.total);
    show("request-rate", win ? rate(win.rate) : "–");
    const recent = win && win.requests > 0;
    show("latency-scope", recent ? `last ${Math.round(win.dt)} s` : "since start");
    for (const name of ["p50", "p95", "p99"]) {
      const value = recent ? win[name] : now.latency[name];
      show(`latency-${name}`, millis(value), value);
    }
    for (const name of TIERS) {
      const tier = now.tiers[name];
      show(`${name}-ratio`, percent(tier.ratio), tier.ratio);
      show(`${name}-hits`, integer(tier.hits), tier.hits);
      show(`${name}-misses`, integer(tier.misses), tier.misses);
      $(`${name}-note`).hidden = !tier.note;
      $(`${name}-note`).textContent = tier.note || "";
    }
    show("response-skips", integer(now.tiers.response.skips), now.tiers.response.skips);
    show("l1-entries", integer(cache.l1_entries), cache.l1_entries);
    show("evictions", integer(cache.evictions), cache.evictions);
    show("sql-total", integer(now.sql_statements), now.sql_statements);
    show("sql-rate", win ? rate(win.sqlRate) : "–");
    const redisErrors = Object.values(cache.redis_errors).reduce((a, b) => a + b, 0);
    show("redis-errors", integer(redisErrors), redisErrors);
    show("integrity-failures", integer(cache.integrity_failures), cache.integrity_failures);
    show("scope", now.workers === "all" ? "every worker, added up" : "this process");

    fill(
      "hot-keys",
      now.hot_keys.map(({ key, reads, instances }) => [
        cell(key, "key", key),
        cell(integer(reads), "n"),
        cell(integer(instances.length), "n", instances.join("\n")),
      ]),
      "no reads sampled yet",
      3,
    );
    fill(
      "hot-tags",
      now.hot_tags.map(({ tag, invalidations }) => [cell(tag, "key", tag), cell(integer(invalidations), "n")]),
      "nothing invalidated yet",
      2,
    );
    fill(
      "recent",
      now.recent_invalidations.map((item) => [
        cell(clock(item.at), null, new Date(item.at * 1000).toISOString()),
        cell(source(item.source)),
        item.instance
          ? cell(item.instance, "key", `made by instance ${item.instance}`)
          : cell(`heard by ${item.heard_by.length}`, null, item.heard_by.join("\n")),
        cell(tags(item.tags), null, item.tags.join("\n")),
      ]),
      "nothing invalidated yet",
      4,
    );
    window.strataDeployment.render(now);
    record(now, win);
    show("updated", `updated ${clock(now.timestamp)}`);
  }

  // -- polling and the token -----------------------------------------------------------

  function locked(message) {
    document.body.classList.add("locked");
    $("auth").hidden = false;
    if (message) $("auth-message").textContent = message;
    $("forget").hidden = true;
    document.body.dataset.state = "locked";
    show("updated", "token needed");
    $("token").focus();
  }

  function failed(message) {
    $("error").textContent = message;
    $("error").hidden = false;
    document.body.dataset.state = "error";
    show("updated", "disconnected");
  }

  async function poll() {
    timer = null;
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const abort = new AbortController();
    const timeout = setTimeout(() => abort.abort(), 5000);
    try {
      const response = await fetch("/dashboard/data", { headers, cache: "no-store", signal: abort.signal });
      if (response.status === 401 || response.status === 403) {
        if (token) sessionStorage.removeItem(TOKEN_KEY);
        locked(
          response.status === 403
            ? "That token is not an admin's. The dashboard's data is for admins."
            : token
              ? "That token is not valid. Paste an admin's bearer token."
              : null,
        );
        return; // polling resumes when a token is submitted
      }
      if (!response.ok) throw new Error(`/dashboard/data answered ${response.status}`);
      const now = await response.json();
      snapshots.push(now);
      while (snapshots.length && now.timestamp - snapshots[0].timestamp > WINDOW_S + 2) snapshots.shift();
      last = now;
      $("error").hidden = true;
      document.body.classList.remove("locked");
      $("auth").hidden = true;
      $("forget").hidden = !token;
      render(now);
      document.body.dataset.state = paused ? "paused" : "live";
    } catch (error) {
      failed(`Cannot reach the server: ${error.message || error}`);
    } finally {
      clearTimeout(timeout);
    }
    if (!paused && !document.body.classList.contains("locked")) timer = setTimeout(poll, POLL_MS);
  }

  $("auth-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    if (timer) clearTimeout(timer);
    poll();
  });

  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    if (timer) clearTimeout(timer);
    poll();
  });

  $("pause").addEventListener("click", () => {
    paused = !paused;
    $("pause").textContent = paused ? "Resume" : "Pause";
    document.body.dataset.state = paused ? "paused" : "live";
    if (timer) clearTimeout(timer);
    timer = null;
    if (!paused) poll();
  });

  setUpCharts();
  // For tests and the curious: the charts, the plotted points and the latest answer.
  window.strataDashboard = { charts, points, latest: () => last };
  poll();
})();
