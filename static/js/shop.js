// Shop pages. Everything works without JavaScript; this only adds comfort:
// - the shop list: on phones the filters start collapsed (unless a filter is in use);
// - the product page: the image zoom is a CSS :target lightbox; focus moves into it,
//   Escape closes it and the arrow keys step through the images.
(function () {
  "use strict";
  var filters = document.querySelector("details.shop-filters");
  if (filters && window.matchMedia("(max-width: 900px)").matches && !filters.hasAttribute("data-active")) {
    filters.open = false;
  }
  function openBox() {
    var id = window.location.hash.slice(1);
    return id.indexOf("zoom-") === 0 ? document.getElementById(id) : null;
  }
  var opener = null;
  window.addEventListener("hashchange", function () {
    var box = openBox();
    if (box) {
      var close = box.querySelector(".lightbox-close");
      if (close) close.focus({ preventScroll: true });
    } else if (opener) {
      opener.focus({ preventScroll: true });
      opener = null;
    }
  });
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".gallery-slide");
    if (link) opener = link;
  });
  document.addEventListener("keydown", function (event) {
    var box = openBox();
    if (!box) return;
    if (event.key === "Escape") {
      event.preventDefault();
      window.location.hash = "gallery";
    } else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      var step = box.querySelector(event.key === "ArrowRight" ? ".lightbox-next" : ".lightbox-prev");
      if (step) { event.preventDefault(); step.click(); }
    }
  });
})();
