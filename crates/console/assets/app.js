// Ferrocket console: hash-routed pages over the JSON API (docs/console.md). No framework.
"use strict";

const page = document.getElementById("page");
const status = document.getElementById("status");
let timer = null;

function esc(v) {
  return String(v === undefined || v === null ? "" : v)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

async function api(path) {
  const r = await fetch(path, { cache: "no-store" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function table(headers, rows, id) {
  const head = headers.map((h) => `<th>${esc(h)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.join("")}</tr>`).join("");
  return `<table${id ? ` id="${id}"` : ""}><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

const td = (v, cls) => `<td${cls ? ` class="${cls}"` : ""}>${esc(v)}</td>`;
const num = (v) => td(v, "num");
const time = (ms) => (ms > 0 ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "");

async function cluster() {
  const c = await api("/api/cluster");
  const rows = c.brokers.map((b) => [
    td(b.cluster), td(b.brokerName), num(b.brokerId), td(b.addr),
    td(b.reachable ? b.role : "UNREACHABLE", `role-${b.reachable ? b.role : "down"} role`),
    td(b.version), num(b.sendTps.toFixed(1)), num(b.pullTps.toFixed(1)),
    num((b.diskRatio * 100).toFixed(1) + "%"),
    num(b.brokerId === 0 ? b.replicationLagBytes + " B" : ""),
    td(b.raft ? `term ${b.raft.term} commit ${b.raft.commitIndex}` : ""),
  ]);
  page.innerHTML = `<h2>Cluster</h2>` + table(
    ["Cluster", "Broker name", "ID", "Address", "Role", "Version", "Send TPS", "Pull TPS", "Disk", "Max slave lag", "Raft"],
    rows, "brokers") + `<p>Refreshes every 3 s. ${c.brokers.length} broker(s).</p>`;
}

async function topics(name) {
  if (name) {
    const t = await api(`/api/topics/${encodeURIComponent(name)}`);
    page.innerHTML = `<h2>Topic ${esc(t.topic)}</h2><h3>Route</h3>` +
      table(["Broker name", "Cluster", "Addresses"], t.brokers.map((b) => [td(b.brokerName), td(b.cluster), td(JSON.stringify(b.addrs))])) +
      table(["Broker name", "Read queues", "Write queues", "Perm"], t.queues.map((q) => [td(q.brokerName), num(q.read), num(q.write), num(q.perm)])) +
      `<h3>Queues</h3>` +
      table(["Queue", "Min offset", "Max offset", "Last update"], t.offsets.map((q) => [td(q.queue), num(q.minOffset), num(q.maxOffset), td(time(q.lastUpdate))]), "offsets") +
      `<p><a href="#/messages?topic=${encodeURIComponent(t.topic)}">Messages of the last hour</a></p>`;
    return;
  }
  const t = await api("/api/topics");
  page.innerHTML = `<h2>Topics</h2>` + table(["Topic"], t.topics.map((n) =>
    [`<td><a href="#/topics/${encodeURIComponent(n)}">${esc(n)}</a></td>`]), "topics");
}

async function groups(name) {
  if (name) {
    const g = await api(`/api/groups/${encodeURIComponent(name)}`);
    page.innerHTML = `<h2>Consumer group ${esc(g.group)}</h2><p>Total lag: <b id="lag">${esc(g.totalLag)}</b>` +
      ` · ${esc(g.messageModel || "")} ${esc(g.consumeType || "")}</p><h3>Members</h3>` +
      table(["Client", "Address", "Language", "Version"], g.members.map((m) => [td(m.clientId), td(m.clientAddr), td(m.language), num(m.version)])) +
      `<h3>Queues</h3>` +
      table(["Topic", "Broker", "Queue", "Broker offset", "Consumer offset", "Lag", "Last consumed"],
        g.queues.map((q) => [td(q.topic), td(q.brokerName), num(q.queueId), num(q.brokerOffset), num(q.consumerOffset), num(q.lag), td(time(q.lastTimestamp))]));
    return;
  }
  const g = await api("/api/groups");
  page.innerHTML = `<h2>Consumer groups</h2>` + table(["Group"], g.groups.map((n) =>
    [`<td><a href="#/groups/${encodeURIComponent(n)}">${esc(n)}</a></td>`]), "groups");
}

function messageRows(list) {
  return list.map((m) => [td(m.topic), td(`${m.brokerName}#${m.queueId}@${m.queueOffset}`), td(m.msgId), td(m.tags), td(m.keys),
    td(time(m.storeTimestamp)), num(m.reconsumeTimes), td(m.bodyPreview)]);
}

async function messages(params) {
  const q = new URLSearchParams(params || "");
  const form = `<h2>Messages</h2><form id="msg-form">
    <input name="topic" placeholder="topic" value="${esc(q.get("topic") || "")}">
    <input name="key" placeholder="key" value="${esc(q.get("key") || "")}">
    <input name="id" placeholder="message id" value="${esc(q.get("id") || "")}" size="34">
    <button>Search</button></form>
    <p>By message id; by topic and key; or by topic alone (the last hour).</p>`;
  let result = "";
  if (q.get("id") || q.get("topic")) {
    const m = await api(`/api/messages?${q.toString()}`);
    result = table(["Topic", "Queue", "Message id", "Tags", "Keys", "Stored", "Retries", "Body"], messageRows(m.messages), "messages");
    const hist = m.messages.flatMap((x) => x.history || []);
    if (hist.length) {
      result += `<h3>Retry and DLQ history</h3>` + table(["Topic", "Queue", "Message id", "Tags", "Keys", "Stored", "Retries", "Body"], messageRows(hist), "history");
    }
  }
  page.innerHTML = form + result;
  document.getElementById("msg-form").onsubmit = (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const p = new URLSearchParams();
    for (const [k, v] of f.entries()) if (v) p.set(k, v);
    location.hash = `#/messages?${p.toString()}`;
  };
}

async function route() {
  clearInterval(timer);
  const hash = location.hash || "#/cluster";
  const [path, query] = hash.slice(2).split("?");
  const [section, arg] = path.split("/").map(decodeURIComponent);
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.id === `nav-${section}`);
  const render = {
    cluster: () => cluster(),
    topics: () => topics(arg),
    groups: () => groups(arg),
    messages: () => messages(query),
  }[section] || (() => cluster());
  const run = async () => {
    try {
      await render();
      status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      status.textContent = "";
      page.innerHTML = `<p class="error">Error: ${esc(e.message)}</p>`;
    }
  };
  await run();
  if (section === "cluster" || !section) timer = setInterval(run, 3000);
}

window.addEventListener("hashchange", route);
route();
