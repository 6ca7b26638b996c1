// The console's pages by location hash: sign-in, the agent's queue and dispute page, and a
// buyer's or supplier's orders and trade page.
import { api, esc, field, onSubmit, Problem, session, when, money } from "./api.js";
import { queuePage, disputePage } from "./agent.js";
import { tradePage } from "./trade.js";

const main = document.getElementById("main");
let leaving = [];  // timers of the page shown

export function onLeave(stop) { leaving.push(stop); }

function header() {
  const claims = session.claims;
  document.getElementById("who").innerHTML = claims
    ? `${esc(claims.sub)} <span class="badge">${esc(claims.role)}</span> <button class="secondary" id="sign-out" type="button">Sign out</button>` : "";
  document.getElementById("sign-out")?.addEventListener("click", () => { session.token = null; location.hash = "#/sign-in"; });
  document.getElementById("nav").innerHTML = !claims ? "" : claims.role === "agent"
    ? '<a href="#/queue">Escalated disputes</a>' : '<a href="#/orders">My orders</a>';
}

async function signInPage() {
  const config = await (await fetch("/config")).json();
  main.innerHTML = `<h1>Sign in</h1>
    ${config.development ? `<section><h2>Development sign-in</h2>
      <p class="muted">Only on a development platform: mints a token for any party.</p>
      <form id="dev">${field("role", "Role", `<select required><option value="agent">Customer service agent</option><option value="buyer">Buyer</option><option value="supplier">Supplier</option></select>`)}
        ${field("party_id", "Party id", '<input required autocomplete="username" value="agent-1">')}
        <button type="submit">Sign in as this party</button></form></section>` : ""}
    ${config.identity_provider_url ? `<section><h2>Your organisation</h2><p><a href="${esc(config.identity_provider_url)}">Sign in with the identity provider</a></p></section>` : ""}
    <section><h2>Paste a token</h2><form id="paste">${field("token", "Bearer token", '<textarea required spellcheck="false"></textarea>')}
      <button type="submit">Sign in with this token</button></form></section>`;
  const dev = document.getElementById("dev");
  if (dev) {
    const role = dev.querySelector("select"), party = dev.querySelector("input");
    role.addEventListener("change", () => { party.value = `${role.value}-1`; });
    onSubmit(dev, async values => {
      const response = await fetch("/dev/token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(values) });
      const body = await response.json();
      if (!response.ok) throw new Problem(response.status, body);
      session.token = body.token; location.hash = "#/";
    });
  }
  onSubmit(document.getElementById("paste"), async values => { session.token = values.token.trim(); location.hash = "#/"; });
}

async function ordersPage() {
  const orders = await api("order", "orders");
  main.innerHTML = `<h1>My orders</h1><section><table><caption class="muted">${orders.length} order(s), newest first</caption>
    <thead><tr><th scope="col">Order</th><th scope="col">Status</th><th scope="col">Total</th><th scope="col">Placed</th><th scope="col">Other party</th></tr></thead>
    <tbody>${orders.map(o => `<tr><td><a href="#/trade/${esc(o.order_id)}">${esc(o.order_id)}</a></td><td><span class="badge">${esc(o.status)}</span></td>
      <td>${money(o.total, o.currency)}</td><td>${when(o.placed_at)}</td>
      <td>${esc(session.claims.role === "buyer" ? o.parties.supplier.name : o.parties.buyer.name)}</td></tr>`).join("")}</tbody></table></section>`;
}

async function route() {
  leaving.forEach(stop => stop()); leaving = [];
  // A production identity provider sends the user back with #token=<jwt>.
  if (location.hash.startsWith("#token=")) { session.token = decodeURIComponent(location.hash.slice(7)); location.hash = "#/"; return; }
  header();
  const [, page, id] = location.hash.split("/");
  const claims = session.claims;
  try {
    if (!claims || page === "sign-in") return await signInPage();
    if (page === "queue") return await queuePage(main);
    if (page === "dispute") return await disputePage(main, decodeURIComponent(id));
    if (page === "trade") return await tradePage(main, decodeURIComponent(id));
    if (page === "orders") return await ordersPage();
    location.hash = claims.role === "agent" ? "#/queue" : "#/orders";
  } catch (error) {
    main.innerHTML = `<h1>Not shown</h1><p class="form-error" role="alert">${esc(error.body?.title || "Error")}: ${esc(error.message)}</p>`;
    if (error.status === 401) main.innerHTML += '<p><a href="#/sign-in">Sign in again</a></p>';
  } finally { main.focus(); }
}

window.addEventListener("hashchange", route);
route();
