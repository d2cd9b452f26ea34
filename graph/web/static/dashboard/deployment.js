// The deployment section of Strata's dashboard: every live instance (every worker of every
// server) as published to Redis, added up, and one row each. dashboard.js calls
// strataDeployment.render(snapshot) on every poll.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const integer = (n) => (n == null ? "–" : Math.round(n).toLocaleString("en-US"));
  const percent = (r) => (r == null ? "–" : `${(r * 100).toFixed(1)}%`);
  function millis(seconds) {
    if (seconds == null) return "–";
    const ms = seconds * 1000;
    return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
  }
  function uptime(seconds) {
    const s = Math.floor(seconds);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}`;
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}`;
  }
  const TIERS = ["response", "l1", "l2"];

  function text(id, value, raw) {
    const el = $(id);
    el.textContent = value;
    if (raw !== undefined) el.dataset.value = raw == null ? "" : String(raw);
  }

  function td(content, className, title) {
    const cell = document.createElement("td");
    if (className) cell.className = className;
    cell.textContent = content;
    if (title) cell.title = title;
    return cell;
  }

  // A ratio cell whose tooltip says why a tier reads 0% or nothing.
  function tierCell(tier) {
    const cell = td(percent(tier.ratio), "n", tier.note || `${tier.hits} hits, ${tier.misses} misses`);
    if (tier.note) cell.classList.add("explained");
    return cell;
  }

  function instanceRow(row) {
    const tr = document.createElement("tr");
    tr.dataset.instance = row.id;
    const keys = row.hot_keys.map((item) => item.key);
    const bumps = row.recent_invalidations.map((item) => `${item.source}: ${item.tags.join(" ")}`);
    tr.append(
      td(row.id, "key", `started ${new Date(row.started_at * 1000).toISOString()}`),
      td(`${row.host} · ${row.pid}`, "key", `${row.host}, pid ${row.pid}`),
      td(uptime(row.uptime), "n"),
      td(integer(row.requests), "n"),
      ...TIERS.map((name) => tierCell(row.tiers[name])),
      td(millis(row.latency.p50), "n"),
      td(millis(row.latency.p95), "n"),
      td(keys.join("\n") || "–", "key", keys.join("\n")),
      td(bumps[0] || "–", "key", bumps.join("\n")),
    );
    return tr;
  }

  function render(now) {
    const whole = now.deployment;
    const totals = whole.totals;
    const scope = whole.complete
      ? `every live instance, published every ${whole.report_seconds} s (a record lives ${whole.ttl_seconds} s)`
      : whole.missing;
    text("deployment-scope", scope);
    text("deployment-instances", integer(whole.instance_count), whole.instance_count);
    text("deployment-requests", integer(totals.requests.total), totals.requests.total);
    for (const name of TIERS) {
      const tier = totals.tiers[name];
      text(`deployment-${name}`, percent(tier.ratio), tier.ratio);
    }
    text("deployment-latency", `${millis(totals.latency.p50)} · ${millis(totals.latency.p95)}`);
    const notes = $("deployment-notes");
    notes.replaceChildren(
      ...TIERS.filter((name) => totals.tiers[name].note).map((name) => {
        const li = document.createElement("li");
        li.textContent = `${name === "response" ? "response cache" : name.toUpperCase()}: ${totals.tiers[name].note}`;
        return li;
      }),
    );
    const body = $("instances").tBodies[0];
    body.replaceChildren(...whole.instances.map(instanceRow));
  }

  window.strataDeployment = { render };
})();
