// One-page checkout: place the order (units held), save the card with Stripe.js
// confirmCardSetup, let the server charge it, and complete 3-D Secure with confirmCardPayment
// when the bank asks. Without this script the form still posts and shows its errors; paying
// by card needs Stripe.js (as Stripe requires).
(function () {
  "use strict";

  function csrf(form) {
    var input = form.querySelector("input[name=_csrf_token]");
    return input ? input.value : "";
  }

  function post(form, url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "x-csrftoken": csrf(form) },
      body: body || new FormData()
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, ok: response.ok, data: data };
      });
    });
  }

  function setup(form) {
    // Messages come translated from the page (data-msg-* on the form); English if one is missing.
    function msg(key, fallback) { return form.dataset[key] || fallback; }
    var stripe = window.Stripe(form.dataset.publishableKey);
    var mount = form.querySelector("[data-card-element]");
    var card = stripe.elements().create("card");
    card.mount(mount);
    var button = form.querySelector("#pay-button");
    var hold = form.querySelector("#checkout-hold");
    var order = null; // {number, setup_intent_client_secret, pay_url, complete_url, card_url, done_url}
    var busy = false;

    function clearErrors() {
      form.querySelectorAll("[data-error-for]").forEach(function (el) { el.hidden = true; el.textContent = ""; });
      form.querySelectorAll("[aria-invalid=true]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
      form.querySelectorAll(".has-error").forEach(function (el) { el.classList.remove("has-error"); });
    }

    function showErrors(errors) {
      var first = null;
      Object.keys(errors || {}).forEach(function (name) {
        var box = form.querySelector('[data-error-for="' + name + '"]') || form.querySelector('[data-error-for="form"]');
        box.textContent = errors[name];
        box.hidden = false;
        var field = form.querySelector('[name="' + name + '"]');
        if (field) {
          field.setAttribute("aria-invalid", "true");
          if (field.closest(".field")) { field.closest(".field").classList.add("has-error"); }
        }
        var target = field && field.type !== "hidden" ? field : box;
        if (!first) { first = target; }
      });
      if (first) {
        if (first.matches("input, select, textarea") && !first.disabled) { first.focus(); }
        else { first.scrollIntoView({ block: "center" }); }
      }
    }

    function cardError(message) {
      showErrors({ card: message || msg("msgError", "Something went wrong. Please try again.") });
    }

    function setBusy(on, label) {
      busy = on;
      button.disabled = on;
      button.setAttribute("aria-busy", on ? "true" : "false");
      if (label) { button.dataset.label = button.dataset.label || button.innerHTML; button.textContent = label; }
      if (!on && button.dataset.label) { button.innerHTML = button.dataset.label; delete button.dataset.label; }
    }

    function lockOrder() {
      // The order is placed and its units are held: address, delivery and voucher are fixed now.
      form.querySelectorAll("[data-lock]").forEach(function (el) {
        el.querySelectorAll("input, select, textarea").forEach(function (input) { input.disabled = true; });
      });
      if (hold) {
        var until = order.reserved_until ? new Date(order.reserved_until) : null;
        var time = until ? until.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
        hold.textContent = (until
          ? msg("msgHeld", "Order __number__ is placed and your items are held until __time__. Finish the payment below.")
          : msg("msgHeldOpen", "Order __number__ is placed and your items are held. Finish the payment below."))
          .replace("__number__", order.number).replace("__time__", time);
        hold.hidden = false;
      }
    }

    function finish(result) {
      var data = result.data || {};
      if (!result.ok) {
        setBusy(false);
        cardError(data.detail || (data.errors && data.errors.card));
        return;
      }
      if (data.status === "paid") {
        window.location.assign(data.redirect || order.done_url);
        return;
      }
      if (data.status === "requires_action") {
        stripe.confirmCardPayment(data.client_secret).then(function () {
          // Whatever the browser saw, the server asks Stripe for the truth.
          return post(form, order.complete_url);
        }).then(function (done) {
          if (done.ok && done.data.status === "requires_action") {
            setBusy(false);
            cardError(msg("msgNotConfirmed", "The payment was not confirmed. Try again or use another card."));
            return;
          }
          finish(done);
        });
        return;
      }
      setBusy(false);
      if (data.setup_intent_client_secret) { order.setup_intent_client_secret = data.setup_intent_client_secret; }
      cardError(data.message || msg("msgDeclined", "Your card was declined. Try another card."));
    }

    function payWithCard() {
      setBusy(true, msg("msgProcessing", "Processing…"));
      stripe.confirmCardSetup(order.setup_intent_client_secret, { payment_method: { card: card } }).then(function (r) {
        if (r.error || !r.setupIntent || r.setupIntent.status !== "succeeded") {
          var message = r.error ? r.error.message : msg("msgNotSaved", "Your card could not be saved. Please try again.");
          // A failed SetupIntent cannot be reused: ask for a fresh one for the next try.
          return post(form, order.card_url).then(function (fresh) {
            if (fresh.ok && fresh.data.setup_intent_client_secret) {
              order.setup_intent_client_secret = fresh.data.setup_intent_client_secret;
            }
            setBusy(false);
            cardError(message);
          });
        }
        var body = new FormData();
        body.append("setup_intent", r.setupIntent.id);
        return post(form, order.pay_url, body).then(finish);
      }).catch(function () {
        setBusy(false);
        cardError(msg("msgProviderOffline", "We could not reach the payment provider. Check your connection and try again."));
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (busy) { return; }
      clearErrors();
      if (order) { payWithCard(); return; }
      setBusy(true, msg("msgPlacing", "Placing your order…"));
      post(form, form.action, new FormData(form)).then(function (result) {
        if (!result.ok) {
          setBusy(false);
          showErrors((result.data && result.data.errors) || { form: msg("msgError", "Something went wrong. Please try again.") });
          return;
        }
        order = result.data;
        if (order.status === "paid") { window.location.assign(order.done_url); return; }
        lockOrder();
        payWithCard();
      }).catch(function () {
        setBusy(false);
        showErrors({ form: msg("msgShopOffline", "We could not reach the shop. Check your connection and try again.") });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.Stripe) { return; }
    document.querySelectorAll("form[data-checkout]").forEach(setup);
  });
})();
