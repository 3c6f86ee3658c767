// The Kanban board's drag-and-drop (native HTML5 DnD, no build step). Dropping a card on another
// column POSTs its new status to the card's data-status-url with the CSRF header; the card moves
// at once and goes back to its column, with the server's message in #messages, if the move is
// refused. Without JavaScript (or from the keyboard) each card's status <select> and Move button
// post the same form; htmx swaps the board, and focus returns to the moved card's select.
(function () {
  "use strict";

  var dragged = null;   // {card, fromList, nextSibling}
  var lastMoved = null; // key of the card moved with the keyboard form

  function csrfToken() {
    // base.html puts the token in <body hx-headers>; the cookie is the fallback.
    try {
      var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
      if (headers["X-CSRFToken"]) return headers["X-CSRFToken"];
    } catch (ignored) { /* fall through to the cookie */ }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function boardOf(element) { return element.closest("[data-board]"); }
  function columnOf(element) { return element.closest("[data-status]"); }

  function refreshColumn(column) {
    var cards = column.querySelectorAll(".ticket-card").length;
    var count = column.querySelector("[data-count]");
    if (count) count.textContent = String(cards);
    var empty = column.querySelector(".empty-column");
    if (empty) empty.hidden = cards > 0;
  }

  function showMessage(html) {
    var messages = document.getElementById("messages");
    if (!messages) return;
    messages.innerHTML = html;
    var first = messages.firstElementChild;
    if (first) { first.setAttribute("tabindex", "-1"); first.focus(); }
  }

  function errorAlert(board) {
    var alert = document.createElement("div");
    alert.className = "alert alert-error";
    alert.setAttribute("role", "alert");
    alert.textContent = board.getAttribute("data-error-text") || "Error";
    return alert.outerHTML;
  }

  function setStatus(card, status) {
    var select = card.querySelector("[data-status-select]");
    if (select) select.value = status;
  }

  function moveBack(move, toColumn) {
    var next = move.nextSibling && move.nextSibling.parentNode === move.fromList ? move.nextSibling : null;
    move.fromList.insertBefore(move.card, next);
    setStatus(move.card, columnOf(move.fromList).getAttribute("data-status"));
    refreshColumn(columnOf(move.fromList));
    refreshColumn(toColumn);
  }

  function saveMove(move, toColumn) {
    var board = boardOf(toColumn);
    var body = new FormData();
    body.append("status", toColumn.getAttribute("data-status"));
    move.card.setAttribute("aria-busy", "true");
    fetch(move.card.getAttribute("data-status-url"), {
      method: "POST",
      body: body,
      credentials: "same-origin",
      // HX-Request: refusals come back as a message fragment, not a whole page.
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" }
    }).then(function (response) {
      // An expired session answers with a redirect to the login page: nothing was saved.
      var login = response.headers.get("HX-Redirect");
      if (login || response.redirected) {
        moveBack(move, toColumn);
        window.location.assign(login || response.url);
        return null;
      }
      if (response.ok) return null;
      return response.text().then(function (html) {
        moveBack(move, toColumn);
        showMessage(html || errorAlert(board));
      });
    }).catch(function () {
      moveBack(move, toColumn);
      showMessage(errorAlert(board));
    }).then(function () {
      move.card.removeAttribute("aria-busy");
    });
  }

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".ticket-card[draggable='true']");
    if (!card || !boardOf(card)) return;
    dragged = { card: card, fromList: card.parentNode, nextSibling: card.nextElementSibling };
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-ticket"));
  });

  document.addEventListener("dragend", function () {
    if (dragged) dragged.card.classList.remove("dragging");
    document.querySelectorAll(".column.drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
    dragged = null;
  });

  document.addEventListener("dragover", function (event) {
    var column = dragged && event.target.closest && event.target.closest("[data-board] [data-status]");
    if (!column) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    document.querySelectorAll(".column.drop-target").forEach(function (c) {
      if (c !== column) c.classList.remove("drop-target");
    });
    column.classList.add("drop-target");
  });

  document.addEventListener("dragleave", function (event) {
    var column = event.target.closest && event.target.closest("[data-board] [data-status]");
    if (column && !column.contains(event.relatedTarget)) column.classList.remove("drop-target");
  });

  document.addEventListener("drop", function (event) {
    var column = dragged && event.target.closest && event.target.closest("[data-board] [data-status]");
    if (!column) return;
    event.preventDefault();
    column.classList.remove("drop-target");
    var move = dragged;
    var fromColumn = columnOf(move.fromList);
    if (fromColumn === column) return;
    column.querySelector("[data-cards]").appendChild(move.card);
    setStatus(move.card, column.getAttribute("data-status"));
    refreshColumn(fromColumn);
    refreshColumn(column);
    saveMove(move, column);
  });

  // Keyboard fallback: remember which card moved, and give its select the focus back after
  // htmx has swapped the board.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var card = event.target.closest && event.target.closest("[data-board] .ticket-card");
    lastMoved = card ? card.getAttribute("data-ticket") : null;
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (!lastMoved || !event.detail.target || event.detail.target.id !== "board") return;
    var card = document.querySelector("[data-board] [data-ticket='" + lastMoved.replace(/'/g, "") + "']");
    var select = card && card.querySelector("[data-status-select]");
    if (select) select.focus();
    lastMoved = null;
  });
})();
