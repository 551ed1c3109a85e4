// slim studio: sortable tables and the progress page's polling. No dependencies.
"use strict";

function sortTable(table, col, th) {
  const asc = th.getAttribute("aria-sort") !== "ascending";
  table.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  const numeric = th.dataset.type === "num";
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = (r) => {
    const c = r.cells[col];
    return c ? (c.dataset.sort !== undefined ? c.dataset.sort : c.textContent.trim()) : "";
  };
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === "" && y !== "") return 1;   // missing values last, either direction
    if (y === "" && x !== "") return -1;
    const d = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
    return asc ? d : -d;
  });
  rows.forEach((r) => body.appendChild(r));
}

function initSortable() {
  document.querySelectorAll("table.sortable").forEach((table) => {
    table.querySelectorAll("thead th").forEach((th, i) => {
      th.addEventListener("click", () => sortTable(table, i, th));
    });
  });
}

function esc(s) {
  return String(s === null || s === undefined ? "" : s).replace(/[&<>"]/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

function seconds(s) {
  if (s.seconds !== null && s.seconds !== undefined) return Number(s.seconds).toFixed(1);
  if (s.state === "running" && s.started) return Math.max(0, Date.now() / 1000 - s.started).toFixed(0) + " s so far";
  return "–";
}

function renderProgress(st) {
  document.getElementById("progress-state").textContent = st.state;
  document.getElementById("progress-state").className = "badge step-" +
    ({ running: "running", done: "done", failed: "failed", starting: "pending" }[st.state] || "pending");
  document.getElementById("progress-unknown").hidden = st.state !== "unknown";
  document.getElementById("progress-count").textContent = (st.finished || 0) + " / " + (st.total || 0);
  const bar = document.getElementById("progress-bar");
  bar.max = st.total || 1; bar.value = st.finished || 0;
  const body = document.querySelector("#steps tbody");
  body.innerHTML = (st.steps || []).map((s) =>
    `<tr data-step="${esc(s.id)}" class="${esc(s.state)}"><td>${esc(s.id)}</td><td>${esc(s.kind)}</td>` +
    `<td><span class="badge step-${esc(s.state)}">${esc(s.state)}</span></td>` +
    `<td class="n">${seconds(s)}</td>` +
    `<td class="sub">${esc(s.why)}</td></tr>`).join("");
  const log = document.getElementById("log");
  if (st.log) { log.hidden = false; log.textContent = st.log; log.scrollTop = log.scrollHeight; }
}

function initProgress() {
  const el = document.getElementById("progress");
  if (!el) return;
  const q = new URLSearchParams({ after: el.dataset.after });
  if (el.dataset.job) q.set("job", el.dataset.job);
  const url = "/api/progress/" + encodeURIComponent(el.dataset.name) + "?" + q;
  const every = parseInt(el.dataset.poll, 10) || 1000;
  const tick = async () => {
    let st;
    try {
      st = await (await fetch(url, { cache: "no-store" })).json();
    } catch (e) {
      setTimeout(tick, every * 2);
      return;
    }
    renderProgress(st);
    if (st.state === "done" && st.url) { window.location.assign(st.url); return; }
    if (st.state === "failed") return;
    setTimeout(tick, every);
  };
  tick();
}

document.addEventListener("DOMContentLoaded", () => { initSortable(); initProgress(); });
