// Calls to the services' public APIs through the console's proxy, and the form helpers
// that show an API's problem details next to the fields they name.

export const session = {
  get token() { return sessionStorage.getItem("token"); },
  set token(value) { value ? sessionStorage.setItem("token", value) : sessionStorage.removeItem("token"); },
  get claims() {
    try { return JSON.parse(atob(this.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))); }
    catch { return null; }
  },
};

export class Problem extends Error {
  constructor(status, body) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), b => b.toString(16).padStart(2, "0")).join("");
}

export async function api(service, path, { method = "GET", body, key } = {}) {
  const headers = { "x-correlation-id": newKey() };
  if (session.token) headers.authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  if (key) headers["idempotency-key"] = key;
  const response = await fetch(`/api/${service}/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.blob();
  if (!response.ok) throw new Problem(response.status, type.includes("json") ? data : null);
  return data;
}

export async function optional(service, path) {
  try { return await api(service, path); } catch (e) { if (e.status === 404) return null; throw e; }
}

export const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

export function digits(currency) {
  try { return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits; }
  catch { return 2; }
}

export function money(minor, currency) {
  if (minor === null || minor === undefined) return "—";
  const d = digits(currency);
  return new Intl.NumberFormat(undefined, { style: "currency", currency, minimumFractionDigits: d }).format(minor / 10 ** d);
}

/** "12.34" in USD → 1234; null when it is not an amount with at most the currency's decimals. */
export function toMinor(text, currency) {
  const d = digits(currency);
  const m = String(text).trim().match(d ? new RegExp(`^(\\d+)(?:[.,](\\d{1,${d}}))?$`) : /^(\d+)$/);
  if (!m) return null;
  return Number(m[1]) * 10 ** d + Number((m[2] || "").padEnd(d, "0") || 0);
}

export const when = iso => iso ? new Date(iso).toLocaleString() : "—";

export function age(iso) {
  const s = Math.max(0, Math.floor((Date.now() - new Date(iso)) / 1000));
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min`;
}

export function field(name, label, input, hint = "") {
  const id = `f-${name.replace(/\W/g, "-")}-${Math.random().toString(36).slice(2, 7)}`;
  return `<div class="field" data-field="${esc(name)}"><label for="${id}">${esc(label)}</label>
    ${input.replace("<input", `<input id="${id}" name="${esc(name)}" aria-describedby="${id}-e"`)
           .replace("<select", `<select id="${id}" name="${esc(name)}" aria-describedby="${id}-e"`)
           .replace("<textarea", `<textarea id="${id}" name="${esc(name)}" aria-describedby="${id}-e"`)}
    ${hint ? `<div class="muted">${esc(hint)}</div>` : ""}<div class="field-error" id="${id}-e" aria-live="polite"></div></div>`;
}

export function clearErrors(form) {
  form.querySelectorAll(".field-error, .form-error").forEach(e => { e.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach(e => e.removeAttribute("aria-invalid"));
}

/** Shows each of a problem's field errors by its field; the rest in the form's alert. */
export function showProblem(form, error) {
  const general = [];
  for (const { field: name, message } of error.body?.errors || []) {
    const box = [...form.querySelectorAll("[data-field]")].find(f => f.dataset.field === name || name.endsWith(`.${f.dataset.field}`) || name.startsWith(`${f.dataset.field}.`));
    if (box) {
      box.querySelector(".field-error").textContent = message;
      box.querySelector("input, select, textarea")?.setAttribute("aria-invalid", "true");
    } else general.push(`${name}: ${message}`);
  }
  const alert = form.querySelector(".form-error");
  alert.textContent = [error.body?.title, error.message, ...general].filter(Boolean).join(" — ");
  (form.querySelector("[aria-invalid]") || alert).focus?.();
}

/** Wires a form: ``send(values)`` runs once at a time, its problem shown in the form. */
export function onSubmit(form, send) {
  form.insertAdjacentHTML("beforeend", '<div class="form-error" role="alert" tabindex="-1"></div>');
  form.addEventListener("submit", async event => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    if (button.disabled) return;
    clearErrors(form);
    button.disabled = true;
    try {
      const keep = await send(Object.fromEntries(new FormData(form)), form);
      if (keep !== true) button.disabled = false;
    } catch (error) {
      button.disabled = false;
      if (error instanceof Problem) showProblem(form, error); else { form.querySelector(".form-error").textContent = String(error); }
    }
  });
}
