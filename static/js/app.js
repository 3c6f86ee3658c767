// Small behaviours shared by the dashboard pages. No build step: plain browser JavaScript.
(function () {
  "use strict";

  // <form data-confirm="..."> asks before submitting (htmx forms use hx-confirm instead).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !form.hasAttribute("hx-post") && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // Upload progress: a form with [data-progress] shows the share sent in its <progress>.
  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.target.closest && event.target.closest("[data-progress]");
    if (!form || !event.detail.lengthComputable) return;
    var bar = form.querySelector("progress");
    var label = form.querySelector("[data-progress-label]");
    var percent = Math.round((event.detail.loaded / event.detail.total) * 100);
    if (bar) { bar.hidden = false; bar.value = percent; }
    if (label) { label.textContent = percent + " %"; }
  });

  // Moving focus to swapped-in messages keeps keyboard and screen-reader users informed.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "messages" && event.detail.target.firstElementChild) {
      event.detail.target.firstElementChild.setAttribute("tabindex", "-1");
      event.detail.target.firstElementChild.focus();
    }
  });
})();
