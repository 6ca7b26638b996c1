// Customer service: the escalated-dispute queue and one dispute with its decision form.
import { age, api, esc, field, money, newKey, onSubmit, Problem, toMinor, when } from "./api.js";

export async function queuePage(main) {
  const queue = (await api("dispute", "disputes/escalated"))
    .sort((a, b) => new Date(a.dispute.escalated_at) - new Date(b.dispute.escalated_at));
  const byReason = {};
  queue.forEach(d => { byReason[d.dispute.reason] = (byReason[d.dispute.reason] || 0) + 1; });
  main.innerHTML = `<h1>Escalated disputes</h1>
    <section><p><strong id="queue-count">${queue.length}</strong> waiting for a decision${queue.length ? `; oldest escalated ${age(queue[0].dispute.escalated_at)} ago` : ""}.
      ${Object.entries(byReason).map(([r, n]) => `<span class="badge">${esc(r)}: ${n}</span>`).join(" ")}</p>
    <table><caption class="muted">Oldest first</caption>
      <thead><tr><th scope="col">Order</th><th scope="col">Waiting</th><th scope="col">Disputed</th><th scope="col">Reason</th><th scope="col">Buyer → supplier</th></tr></thead>
      <tbody>${queue.map(d => `<tr><td><a href="#/dispute/${esc(d.order_id)}">${esc(d.order_id)}</a></td><td>${age(d.dispute.escalated_at)}</td>
        <td>${money(d.dispute.disputed_amount, d.currency)}</td><td>${esc(d.dispute.reason)} / ${esc(d.dispute.requested)}</td>
        <td>${esc(d.parties.buyer.name)} → ${esc(d.parties.supplier.name)}</td></tr>`).join("")}</tbody></table></section>`;
}

async function evidenceHtml(orderId, items) {
  const parts = await Promise.all((items || []).map(async e => {
    const note = e.note ? ` <span class="muted">${esc(e.note)}</span>` : "";
    if (e.kind === "link") return `<li><a href="${esc(e.url)}" rel="noopener noreferrer" target="_blank">${esc(e.url)}</a>${note}</li>`;
    let preview = "";
    try {
      const blob = await api("dispute", `orders/${encodeURIComponent(orderId)}/dispute/attachments/${encodeURIComponent(e.attachment_id)}`);
      const url = URL.createObjectURL(blob);
      preview = e.content_type?.startsWith("image/") ? `<img src="${url}" alt="Evidence ${esc(e.filename)}">`
        : e.content_type === "application/pdf" ? `<iframe src="${url}" title="Evidence ${esc(e.filename)}"></iframe>` : "";
      preview += `<a href="${url}" download="${esc(e.filename)}">Download ${esc(e.filename)}</a>`;
    } catch (error) { preview = `<span class="form-error">${esc(e.filename)}: ${esc(error.message)}</span>`; }
    return `<li class="evidence">${preview}${note}</li>`;
  }));
  return parts.length ? `<ul>${parts.join("")}</ul>` : "";
}

function moneyHtml(payment, ledger) {
  const byMethod = {};
  payment.payments.forEach(p => { byMethod[p.method] = (byMethod[p.method] || 0) + p.accepted; });
  return `<dl class="money" id="money">
    <dt>Paid in</dt><dd data-k="paid_in">${money(ledger.paid_in, ledger.currency)}</dd>
    <dt>Held</dt><dd data-k="held">${money(ledger.held, ledger.currency)}</dd>
    <dt>Released to supplier</dt><dd data-k="released">${money(ledger.released, ledger.currency)}</dd>
    <dt>Refunded to buyer</dt><dd data-k="refunded">${money(ledger.refunded, ledger.currency)}</dd>
    ${Object.entries(byMethod).map(([m, v]) => `<dt>Paid by ${esc(m.replace("_", " "))}</dt><dd>${money(v, ledger.currency)}</dd>`).join("")}
    <dt>Ledger</dt><dd>${ledger.balanced ? '<span class="ok">balanced</span>' : '<span class="form-error">NOT balanced</span>'}</dd></dl>
    ${payment.card ? `<p class="muted">Card ${esc(payment.card.brand)} •••• ${esc(payment.card.last4)}</p>` : ""}`;
}

export async function disputePage(main, orderId) {
  const id = encodeURIComponent(orderId);
  const [view, order, payment, ledger, messages] = await Promise.all([
    api("dispute", `orders/${id}/dispute`), api("order", `orders/${id}`), api("payment", `orders/${id}/payment`),
    api("payment", `orders/${id}/ledger`), api("order", `orders/${id}/messages`)]);
  const d = view.dispute, cur = order.currency;
  const statements = await Promise.all(d.statements.map(async s => `<li><strong>${esc(s.author_role)}</strong> ${when(s.at)}: ${esc(s.text)}${await evidenceHtml(orderId, s.evidence)}</li>`));
  main.innerHTML = `<h1>Dispute on order ${esc(orderId)} <span class="badge" id="dispute-status">${esc(d.status)}</span></h1>
    <div class="grid">
      <section><h2>Order</h2><p>${esc(order.parties.buyer.name)} (${esc(order.parties.buyer.party_id)}) buys from ${esc(order.parties.supplier.name)} (${esc(order.parties.supplier.party_id)})</p>
        <table><thead><tr><th scope="col">Item</th><th scope="col">Qty</th><th scope="col">Price</th></tr></thead>
        <tbody>${order.items.map(i => `<tr><td>${esc(i.description)}</td><td>${i.quantity}</td><td>${money(i.unit_price, cur)}</td></tr>`).join("")}</tbody></table>
        <p>Total ${money(order.total, cur)}; shipped ${esc(view.ship_date || "—")} by ${esc(view.carrier || "—")} ${esc(view.tracking_number || "")}</p></section>
      <section><h2>Money</h2>${moneyHtml(payment, ledger)}</section>
      <section><h2>Claim</h2><p><strong>${esc(d.reason)}</strong>, wants <strong>${esc(d.requested)}</strong>; disputed ${money(d.disputed_amount, cur)}</p>
        <p>${esc(d.description)}</p>${await evidenceHtml(orderId, d.evidence)}
        <p>Supplier's answer: ${d.answer ? `<strong>${esc(d.answer)}</strong>${d.counter_amount ? ` — counter-offer ${money(d.counter_amount, cur)}` : ""} ${esc(d.answer_message)}` : "none"}</p>
        <p class="muted">Opened ${when(d.opened_at)}; answer due ${when(d.answer_due_at)}; escalated ${when(d.escalated_at)} by ${esc(d.escalated_by || "—")}</p></section>
    </div>
    <section><h2>Statements and messages</h2><ul class="history">${statements.join("") || "<li class=muted>No statements</li>"}
      ${messages.map(m => `<li><strong>${esc(m.author_role || m.author || "message")}</strong> ${when(m.at || m.sent_at)}: ${esc(m.text)}</li>`).join("")}</ul></section>
    <section><h2>History</h2><ol class="history">${view.history.map(h => `<li>${when(h.at)} — ${esc(h.what)}</li>`).join("")}</ol></section>
    <section id="decision"></section>`;
  decisionForm(main.querySelector("#decision"), orderId, view, ledger);
}

function decisionForm(box, orderId, view, ledger) {
  const d = view.dispute, cur = view.currency || ledger.currency;
  if (d.resolution) { box.innerHTML = resultHtml(d.resolution, cur, ledger); return; }
  const key = newKey();  // one decision: the same key on a resubmission
  box.innerHTML = `<h2>Decision</h2><form id="decide" novalidate>
    <fieldset data-field="outcome"><legend>Outcome</legend>
      <input type="radio" name="outcome" value="full_refund" id="o-full" required><label for="o-full">Full refund to the buyer</label>
      <input type="radio" name="outcome" value="partial_refund" id="o-partial"><label for="o-partial">Partial refund</label>
      <input type="radio" name="outcome" value="release" id="o-release"><label for="o-release">Release to the supplier</label>
      <div class="field-error" aria-live="polite"></div></fieldset>
    ${field("refund_amount", `Refund amount (${cur})`, '<input inputmode="decimal" autocomplete="off">', `partial refund only: above zero, below the ${money(ledger.held, cur)} held`)}
    ${field("reason", "Written reason (sent to both parties)", "<textarea required></textarea>")}
    <button type="submit">Decide (final)</button></form>`;
  onSubmit(box.querySelector("form"), async values => {
    const errors = [];
    if (!values.outcome) errors.push({ field: "outcome", message: "choose an outcome" });
    if (!values.reason?.trim()) errors.push({ field: "reason", message: "a written reason is required" });
    let refund = null;
    if (values.outcome === "partial_refund") {
      refund = toMinor(values.refund_amount, cur);
      if (refund === null) errors.push({ field: "refund_amount", message: `an amount in ${cur}, e.g. 12.50` });
      else if (refund <= 0 || refund >= ledger.held) errors.push({ field: "refund_amount", message: `must be above zero and below the ${money(ledger.held, cur)} held` });
    }
    if (errors.length) throw new Problem(0, { title: "Not sent", detail: "check the marked fields", errors });
    await api("dispute", `orders/${encodeURIComponent(orderId)}/dispute/decision`, { method: "POST", key,
      body: { outcome: values.outcome, refund_amount: refund, reason: values.reason.trim() } });
    box.innerHTML = '<h2>Decision</h2><p role="status" id="decision-result">Decided; waiting for the payment to execute it…</p>';
    await showExecuted(box, orderId, cur);
    return true;
  });
}

function resultHtml(resolution, cur, ledger) {
  return `<h2>Decision</h2><div role="status" id="decision-result"><p><strong>${esc(resolution.outcome)}</strong> by ${esc(resolution.agent_id || resolution.decided_by)} ${when(resolution.resolved_at)}: refund ${money(resolution.refund_amount, cur)} — ${esc(resolution.reason)}</p>
    <p id="executed">${ledger.held === 0 ? `<span class="ok">Executed</span>: refunded ${money(ledger.refunded, cur)} to the buyer, released ${money(ledger.released, cur)} to the supplier; nothing held.` : `Being executed: ${money(ledger.held, cur)} still held.`}</p></div>`;
}

async function showExecuted(box, orderId, cur) {
  const id = encodeURIComponent(orderId);
  for (let i = 0; i < 120; i++) {  // the payment executes the decision from the event: a few seconds
    const [view, ledger, payment] = await Promise.all([api("dispute", `orders/${id}/dispute`),
      api("payment", `orders/${id}/ledger`), api("payment", `orders/${id}/payment`)]);
    box.innerHTML = resultHtml(view.dispute.resolution, cur, ledger);
    document.querySelector("#dispute-status").textContent = view.dispute.status;
    document.querySelector("#money").parentElement.innerHTML = `<h2>Money</h2>${moneyHtml(payment, ledger)}`;
    if (ledger.held === 0) return;
    await new Promise(r => setTimeout(r, 1000));
  }
}
