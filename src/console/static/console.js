// tokend console: dialogs, confirmations and the copy button. Same origin, no inline
// script (the Content-Security-Policy allows only 'self'); every form works without it.
"use strict";
(function () {
  document.documentElement.classList.add("js");
  var pending = null;
  function confirmDialog() { return document.getElementById("confirm"); }

  document.addEventListener("click", function (e) {
    var t = e.target;
    if (!(t instanceof Element)) return;
    var menu = t.closest("#menu-toggle");
    if (menu) {
      var expanded = menu.getAttribute("aria-expanded") === "true";
      menu.setAttribute("aria-expanded", expanded ? "false" : "true");
      document.documentElement.classList.toggle("menu-open", !expanded);
      return;
    }
    var open = t.closest("[data-open]");
    if (open) {
      var d = document.getElementById(open.getAttribute("data-open"));
      if (d && d.showModal) { d.showModal(); var f = d.querySelector("input:not([type=hidden]),textarea,select,button"); if (f) f.focus(); }
      return;
    }
    var close = t.closest("[data-close]");
    if (close) {
      var dlg = close.closest("dialog");
      if (dlg) dlg.close();
      pending = null;
      return;
    }
    if (t.id === "confirm-ok" && pending) {
      var form = pending;
      pending = null;
      confirmDialog().close();
      form.setAttribute("data-confirmed", "1");
      form.requestSubmit ? form.requestSubmit() : form.submit();
      return;
    }
    var preset = t.closest("button[data-days]");
    if (preset) {
      var f = preset.closest("form");
      f.querySelector("[name=ttl_days]").value = preset.getAttribute("data-days");
      f.querySelector("[name=expires_on]").value = "";
      expiryPreview(f);
      return;
    }
    var copy = t.closest("[data-copy]");
    if (copy) {
      var src = document.getElementById(copy.getAttribute("data-copy"));
      var status = document.getElementById("copy-status");
      var text = src ? src.textContent : "";
      var done = function (msg) { if (status) status.textContent = msg; };
      var select = function () {
        var r = document.createRange(); r.selectNodeContents(src);
        var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () {
          copy.textContent = "Copied"; done("Copied to the clipboard.");
        }, function () { select(); done("Copying was not allowed: the text is selected, press Ctrl+C (⌘C)."); });
      } else { select(); done("The text is selected: press Ctrl+C (⌘C)."); }
    }
  });

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!(form instanceof HTMLFormElement)) return;
    var msg = form.getAttribute("data-confirm");
    // A checkbox that asks only when it is being ticked now (disabling an account).
    var ticked = form.querySelector("input[data-confirm-check]:checked");
    if (!msg && ticked && !ticked.defaultChecked) msg = ticked.getAttribute("data-confirm-check");
    if (!msg || form.getAttribute("data-confirmed")) return;
    // "Revoke the {n} selected tokens?": the count of ticked boxes of this form.
    var countOf = form.getAttribute("data-confirm-count");
    if (countOf) {
      var n = document.querySelectorAll("input[name=" + countOf + "][form=" + form.id + "]:checked").length;
      if (n === 0) { e.preventDefault(); window.alert("Select the tokens to revoke first."); return; }
      msg = msg.replace("{n}", String(n));
    }
    var d = confirmDialog();
    if (!d || !d.showModal) { if (!window.confirm(msg)) e.preventDefault(); return; }
    e.preventDefault();
    pending = form;
    document.getElementById("confirm-text").textContent = msg;
    var ok = document.getElementById("confirm-ok");
    ok.textContent = form.getAttribute("data-confirm-button") || (ticked && ticked.getAttribute("data-confirm-button")) || "Confirm";
    d.showModal();
    // Cancel has the focus: Enter (or a stray key) never confirms a destructive action.
    d.querySelector("[data-close]").focus();
  });

  // "Expires on …" under the expiry fields, counted from the server's time.
  function expiryPreview(f) {
    var p = f.querySelector("#expiry-preview");
    if (!p) return;
    var now = Number(p.getAttribute("data-now")) * 1000;
    var on = f.querySelector("[name=expires_on]").value;
    var days = Number(f.querySelector("[name=ttl_days]").value);
    var at = on ? Date.parse(on + "T00:00:00Z") : (days > 0 ? now + days * 86400000 : NaN);
    if (isNaN(at)) { p.textContent = ""; return; }
    var n = Math.round((at - now) / 86400000);
    var iso = new Date(at).toISOString();
    p.textContent = "Expires on " + iso.slice(0, 10) + " " + iso.slice(11, 16) + " UTC (in " + n + " days).";
  }
  document.addEventListener("input", function (e) {
    var t = e.target;
    if (t instanceof HTMLInputElement && (t.name === "ttl_days" || t.name === "expires_on") && t.form) expiryPreview(t.form);
  });

  // Row menus (<details class="menu">): one open at a time; Escape closes and returns focus.
  document.addEventListener("toggle", function (e) {
    var d = e.target;
    if (!(d instanceof HTMLDetailsElement) || !d.classList.contains("menu") || !d.open) return;
    document.querySelectorAll("details.menu[open]").forEach(function (o) { if (o !== d) o.open = false; });
  }, true);
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    var d = e.target instanceof Element ? e.target.closest("details.menu[open]") : null;
    if (d) { d.open = false; var s = d.querySelector("summary"); if (s) s.focus(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    // The row the last action concerned: highlighted and scrolled into view.
    var main = document.getElementById("main");
    var id = main && main.getAttribute("data-flash-row");
    if (id) {
      document.querySelectorAll("tr[data-id]").forEach(function (r) {
        if (r.getAttribute("data-id") === id) { r.classList.add("flash-row"); r.scrollIntoView({ block: "center" }); }
      });
    }
    var d = document.querySelector("dialog[data-open-on-load]");
    if (d && d.showModal) {
      d.showModal();
      var bad = d.querySelector("[aria-invalid=true]") || d.querySelector("input:not([type=hidden])");
      if (bad && bad.focus) bad.focus();
    }
  });
})();
