// A buyer's or supplier's trade page: the steps, the next deadline, the money in escrow and
// what this party may do now.
import { api, esc, field, money, newKey, onSubmit, optional, session, toMinor, when } from "./api.js";
import { onLeave } from "./app.js";

const STEPS = [["placed", "Placed"], ["awaiting_payment", "Confirmed, awaiting payment"], ["paid", "Paid into escrow"],
  ["shipped", "Shipped"], ["in_dispute", "In dispute"], ["received", "Receipt confirmed"], ["closed", "Closed"]];
const CARRIERS = ["dhl", "fedex", "ups", "usps", "sf-express", "ems"];
const METHODS = ["express", "air-freight", "sea-freight", "rail-freight", "road-freight"];
const options = list => list.map(v => `<option value="${v}">${v}</option>`).join("");

function nextDeadline(order, payment, shipment, protection) {
  const d = protection?.dispute;
  const candidates = [
    order.status === "awaiting_payment" && ["Pay by", payment?.pay_by || order.payment_due_at],
    shipment?.status === "awaiting_dispatch" && ["Ship by", shipment.ship_by],
    protection?.status === "awaiting_receipt" && !d && ["Dispute opens", protection.dispute_opens_at],
    protection?.status === "awaiting_receipt" && ["Receipt confirmed automatically", protection.receipt.auto_confirm_at],
    d?.status === "open" && !d.answer && ["Supplier's answer due", d.answer_due_at],
    d?.status === "open" && ["Escalated automatically", d.auto_escalate_at],
  ].filter(c => c && c[1] && (c[0] !== "Dispute opens" || new Date(c[1]) > Date.now()));
  return candidates.sort((a, b) => new Date(a[1]) - new Date(b[1]))[0] || null;
}

function countdown(iso) {
  const s = Math.floor((new Date(iso) - Date.now()) / 1000);
  if (s <= 0) return "due now";
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return `${d} d ${String(h).padStart(2, "0")} h ${String(m).padStart(2, "0")} min ${String(s % 60).padStart(2, "0")} s`;
}

export async function tradePage(main, orderId) {
  const id = encodeURIComponent(orderId), role = session.claims.role;
  const [order, payment, shipment, protection, messages] = await Promise.all([api("order", `orders/${id}`),
    optional("payment", `orders/${id}/payment`), optional("shipping", `orders/${id}/shipment`),
    optional("dispute", `orders/${id}/protection`), api("order", `orders/${id}/messages`)]);
  const disputed = order.status === "in_dispute" || order.timeline.some(h => h.what.includes("dispute"));
  const steps = STEPS.filter(([s]) => s !== "in_dispute" || disputed);
  const cur = order.currency, reached = steps.findIndex(([s]) => s === order.status);
  const next = nextDeadline(order, payment, shipment, protection);
  main.innerHTML = `<h1>Order ${esc(orderId)} <span class="badge" id="order-status">${esc(order.status)}</span></h1>
    <section aria-label="Steps"><ol class="steps">${steps.map(([s, label], i) => `<li class="${i < reached ? "done" : ""}" ${i === reached ? 'aria-current="step"' : ""}>${label}</li>`).join("")}</ol>
      ${order.closure_reason ? `<p>Closed: ${esc(order.closure_reason)}</p>` : ""}</section>
    <div class="grid">
      <section><h2>Next deadline</h2>${next ? `<p>${esc(next[0])}: ${when(next[1])}</p><p class="countdown" id="countdown" aria-live="off">${countdown(next[1])}</p>` : '<p class="muted">None running</p>'}</section>
      <section><h2>Money in escrow</h2><dl class="money" id="money">
        <dt>Total</dt><dd>${money(order.total, cur)}</dd>
        <dt>Paid in</dt><dd>${money(payment?.paid_in ?? 0, cur)}</dd><dt>Held</dt><dd data-k="held">${money(payment?.held ?? 0, cur)}</dd>
        <dt>Released to supplier</dt><dd data-k="released">${money(payment?.released ?? 0, cur)}</dd><dt>Refunded to buyer</dt><dd data-k="refunded">${money(payment?.refunded ?? 0, cur)}</dd></dl></section>
      <section><h2>Goods</h2><ul>${order.items.map(i => `<li>${i.quantity} × ${esc(i.description)} at ${money(i.unit_price, cur)}</li>`).join("")}</ul>
        <p>${esc(order.parties.buyer.name)} buys from ${esc(order.parties.supplier.name)}${shipment?.dispatch ? `; shipped ${esc(shipment.dispatch.ship_date)}, ${esc(shipment.dispatch.carrier)} ${esc(shipment.dispatch.tracking_number)}` : ""}</p></section>
    </div>
    <section id="actions"><h2>What you can do now</h2></section>
    <section><h2>Timeline</h2><ol class="history">${[...order.timeline, ...(protection?.history || [])].sort((a, b) => new Date(a.at) - new Date(b.at))
      .filter((h, i, all) => !all.slice(0, i).some(e => e.at === h.at && e.what === h.what))  // told by two services
      .map(h => `<li>${when(h.at)} — ${esc(h.what)}</li>`).join("")}</ol></section>
    <section><h2>Messages</h2><ul class="history">${messages.map(m => `<li><strong>${esc(m.author_role)}</strong> ${when(m.at)}: ${esc(m.text)}</li>`).join("") || "<li class=muted>None yet</li>"}</ul>
      <form data-action="message">${field("text", "Write to the other party", "<textarea required></textarea>")}<button type="submit">Send message</button></form></section>`;
  if (next) { const timer = setInterval(() => { const c = document.getElementById("countdown"); if (c) c.textContent = countdown(next[1]); }, 1000); onLeave(() => clearInterval(timer)); }
  const reload = () => tradePage(main, orderId);
  const box = main.querySelector("#actions");
  const post = (service, path, body, key) => api(service, `orders/${id}/${path}`, { method: "POST", body, key });
  const add = (name, html, send) => {
    box.insertAdjacentHTML("beforeend", `<form data-action="${name}" novalidate>${html}</form>`);
    onSubmit(box.lastElementChild, async values => { await send(values); await reload(); return true; });
  };
  onSubmit(main.querySelector('[data-action="message"]'), async v => { await post("order", "messages", { text: v.text }); await reload(); return true; });
  const d = protection?.dispute, active = d && ["open", "escalated"].includes(d.status);

  if (role === "supplier" && order.status === "placed") {
    add("confirm", `<h3>Confirm the order</h3>${field("shipping_method", "Shipping method", `<select>${options(METHODS)}</select>`)}${field("carrier", "Carrier", `<select>${options(CARRIERS)}</select>`)}<button type="submit">Confirm order</button>`,
      v => post("order", "confirm", { logistics: { shipping_method: v.shipping_method, carrier: v.carrier } }));
    add("decline", `${field("reason", "Reason for declining", "<input>")}<button type="submit" class="secondary">Decline order</button>`, v => post("order", "decline", { reason: v.reason }));
  }
  if (role === "buyer" && ["placed", "awaiting_payment"].includes(order.status))
    add("cancel", `${field("reason", "Reason for cancelling", "<input>")}<button type="submit" class="secondary">Cancel order</button>`, v => post("order", "cancel", { reason: v.reason }));
  if (role === "buyer" && payment?.status === "awaiting_funds") {
    const key = newKey();
    add("pay", `<h3>Pay ${money(payment.remaining, cur)} by card</h3>
      ${field("number", "Card number", '<input inputmode="numeric" autocomplete="cc-number">')}
      ${field("expiry_month", "Expiry month (1-12)", '<input inputmode="numeric" autocomplete="cc-exp-month">')}
      ${field("expiry_year", "Expiry year", '<input inputmode="numeric" autocomplete="cc-exp-year">')}
      ${field("cvc", "Security code", '<input inputmode="numeric" autocomplete="cc-csc">')}
      ${field("holder_name", "Name on the card", '<input autocomplete="cc-name">')}<button type="submit">Pay by card</button>`,
      v => post("payment", "payments/card", { number: v.number.replace(/\s/g, ""), expiry_month: v.expiry_month, expiry_year: v.expiry_year, cvc: v.cvc, holder_name: v.holder_name }, key));
    const t = payment.transfer_instructions;
    box.insertAdjacentHTML("beforeend", `<h3>Or pay by bank transfer</h3><dl class="money" id="transfer"><dt>Reference (required)</dt><dd>${esc(t.reference)}</dd><dt>Beneficiary</dt><dd>${esc(t.beneficiary)}</dd>
      <dt>IBAN</dt><dd>${esc(t.iban)}</dd><dt>BIC</dt><dd>${esc(t.bic)}</dd><dt>Bank</dt><dd>${esc(t.bank_name)}</dd><dt>Amount</dt><dd>${money(payment.remaining, cur)}</dd></dl>`);
  }
  if (role === "supplier" && shipment?.status === "awaiting_dispatch")
    add("dispatch", `<h3>Proof of dispatch</h3>${field("carrier", "Carrier", `<select>${options(CARRIERS)}</select>`)}${field("tracking_number", "Tracking number", "<input>")}
      ${field("ship_date", "Ship date", `<input type="date" value="${new Date().toISOString().slice(0, 10)}">`)}<button type="submit">Submit dispatch proof</button>`,
      v => post("shipping", "shipment", v));
  if (role === "buyer" && protection?.status === "awaiting_receipt" && !active) {
    add("receipt", '<h3>Goods arrived?</h3><p>Confirming releases the payment to the supplier.</p><button type="submit">Confirm receipt</button>', () => post("dispute", "receipt", {}));
    add("dispute", `<h3>Open a dispute</h3><p class="muted">From ${when(protection.dispute_opens_at)}</p>
      ${field("reason", "Reason", '<select><option value="not_received">Not received</option><option value="not_as_described">Not as described</option><option value="other">Other</option></select>')}
      ${field("requested", "You want", '<select><option value="full_refund">A full refund</option><option value="partial_refund">A partial refund, keeping the goods</option></select>')}
      ${field("amount", `Partial refund (${cur})`, '<input inputmode="decimal">')}${field("description", "What happened", "<textarea></textarea>")}
      ${field("evidence", "Evidence (image or PDF)", '<input type="file" accept="image/png,image/jpeg,application/pdf">')}<button type="submit">Open dispute</button>`,
      async v => post("dispute", "dispute", { reason: v.reason, requested: v.requested, description: v.description,
        amount: v.requested === "partial_refund" ? toMinor(v.amount, cur) ?? v.amount : null, evidence: await uploads(v.evidence) }));
  }
  if (active) {
    box.insertAdjacentHTML("beforeend", `<p>Dispute <span class="badge">${esc(d.status)}</span>: ${esc(d.reason)}, ${esc(d.requested)} of ${money(d.disputed_amount, cur)}.
      ${d.answer ? `Supplier answered <strong>${esc(d.answer)}</strong>${d.counter_amount ? ` with a counter-offer of ${money(d.counter_amount, cur)}` : ""}.` : ""}</p>`);
    add("statement", `${field("text", "Add a statement", "<textarea></textarea>")}${field("evidence", "Evidence (image or PDF)", '<input type="file" accept="image/png,image/jpeg,application/pdf">')}<button type="submit">Add statement</button>`,
      async v => post("dispute", "dispute/statements", { text: v.text, evidence: await uploads(v.evidence) }));
    if (role === "supplier" && d.status === "open" && !d.answer)
      add("answer", `<h3>Answer the dispute</h3>${field("answer", "Answer", '<select><option value="accept">Accept</option><option value="reject">Reject</option><option value="counter_offer">Counter-offer</option></select>')}
        ${field("amount", `Counter-offer (${cur})`, '<input inputmode="decimal">')}${field("message", "Message", "<textarea></textarea>")}<button type="submit">Send answer</button>`,
        v => post("dispute", "dispute/answer", { answer: v.answer, message: v.message, amount: v.answer === "counter_offer" ? toMinor(v.amount, cur) ?? v.amount : null }));
    if (role === "buyer" && d.status === "open" && d.counter_amount)
      add("accept-offer", `<button type="submit">Accept ${money(d.counter_amount, cur)}</button>`, () => post("dispute", "dispute/accept-counter-offer", {}));
    if (role === "buyer" && d.status === "open") add("withdraw", '<button type="submit" class="secondary">Withdraw the dispute</button>', () => post("dispute", "dispute/withdraw", {}));
    if (d.status === "open") add("escalate", '<button type="submit" class="secondary">Escalate to customer service</button>', () => post("dispute", "dispute/escalate", {}));
  }
  if (!box.querySelector("form, dl")) box.insertAdjacentHTML("beforeend", '<p class="muted" id="nothing-to-do">Nothing for you to do now.</p>');
}

async function uploads(file) {
  if (!file || !file.size) return [];
  const data = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",")[1]); reader.onerror = reject; reader.readAsDataURL(file);
  });
  return [{ kind: "attachment", filename: file.name, content_type: file.type, data_base64: data }];
}
