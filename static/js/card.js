// Card forms: Stripe.js card element + confirmCardSetup (save a card) or confirmCardPayment
// (authenticate a payment). The server then checks the result with Stripe.
(function () {
  "use strict";
  function setup(form) {
    var stripe = window.Stripe(form.dataset.publishableKey);
    var errorBox = form.querySelector("[data-card-error]");
    var mount = form.querySelector("[data-card-element]");
    var card = null;
    if (mount) {
      card = stripe.elements().create("card");
      card.mount(mount);
    }
    var busy = false;
    function showError(message) {
      if (!errorBox) { return; }
      // Messages come translated from the page (data-msg-* on the form); English if one is missing.
      errorBox.textContent = message || form.dataset.msgError || "Something went wrong. Please try again.";
      errorBox.hidden = false;
    }
    form.addEventListener("submit", function (event) {
      if (form.dataset.confirmed === "yes") { return; }
      event.preventDefault();
      if (busy) { return; }
      busy = true;
      var button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = true; }
      var done = function (result, intentKey, field) {
        busy = false;
        if (button) { button.disabled = false; }
        if (result.error) { showError(result.error.message); return; }
        var intent = result[intentKey];
        if (!intent || (intent.status !== "succeeded" && intent.status !== "processing")) {
          showError(form.dataset.msgAuthFailed || "Authentication did not complete. Please try again.");
          return;
        }
        if (field) { form.querySelector("input[name=" + field + "]").value = intent.id; }
        form.dataset.confirmed = "yes";
        form.submit();
      };
      if (form.dataset.mode === "payment") {
        stripe.confirmCardPayment(form.dataset.clientSecret).then(function (r) { done(r, "paymentIntent", null); });
      } else {
        stripe.confirmCardSetup(form.dataset.clientSecret, { payment_method: { card: card } })
          .then(function (r) { done(r, "setupIntent", "setup_intent"); });
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.Stripe) { return; }
    document.querySelectorAll("form[data-card-form]").forEach(setup);
  });
})();
