/* Claire de Binaire admin: refresh a page's content every few seconds, in place.
 *
 * A page opts in with <main data-refresh="SECONDS">. Every SECONDS the page is fetched again
 * and its #content swapped for the new one, keeping the scroll position and any open
 * <details id=...>. Nothing is refreshed while the tab is hidden, while a form field has the
 * focus or holds something not yet sent, or while the user has paused it (the toggle above
 * the content; the choice is kept for the browser's session in sessionStorage).
 * Served from the app itself: no CDN, and nothing inline, so the strict CSP holds.
 */
(function () {
  "use strict";

  var main = document.querySelector("main[data-refresh]");
  if (!main || !window.fetch || !window.DOMParser) {
    return;
  }
  var seconds = Math.max(2, parseInt(main.getAttribute("data-refresh"), 10) || 5);
  var KEY = "cdb-refresh-paused";
  var bar = document.getElementById("refresh-bar");
  var button = document.getElementById("refresh-toggle");
  var status = document.getElementById("refresh-status");
  var busy = false;

  function paused() {
    try {
      return window.sessionStorage.getItem(KEY) === "1";
    } catch (e) {
      return false;
    }
  }

  function setPaused(value) {
    try {
      if (value) {
        window.sessionStorage.setItem(KEY, "1");
      } else {
        window.sessionStorage.removeItem(KEY);
      }
    } catch (e) {
      /* storage refused: the toggle still shows the state until the next page */
    }
    show();
  }

  function show() {
    var off = paused();
    button.textContent = off ? "Resume auto-refresh" : "Pause auto-refresh";
    button.setAttribute("aria-pressed", off ? "true" : "false");
    bar.classList.toggle("paused", off);
    if (off) {
      status.textContent = "auto-refresh paused";
    }
  }

  function edited(field) {
    if (field.type === "hidden" || field.type === "submit" || field.type === "button") {
      return false;
    }
    if (field.type === "checkbox" || field.type === "radio") {
      return field.checked !== field.defaultChecked;
    }
    if (field.tagName === "SELECT") {
      for (var i = 0; i < field.options.length; i++) {
        if (field.options[i].selected !== field.options[i].defaultSelected) {
          return true;
        }
      }
      return false;
    }
    return field.value !== field.defaultValue;
  }

  function typing() {
    var active = document.activeElement;
    if (active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) {
      return true;
    }
    var fields = document.querySelectorAll("#content input, #content textarea, #content select");
    for (var i = 0; i < fields.length; i++) {
      if (edited(fields[i])) {
        return true;
      }
    }
    return false;
  }

  function stamp() {
    status.textContent = "updated " + new Date().toISOString().slice(0, 19) + "Z · every " +
      seconds + " s";
  }

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("content");
    var current = document.getElementById("content");
    if (!fresh || !current) {
      return;
    }
    var open = [];
    current.querySelectorAll("details[open][id]").forEach(function (d) {
      open.push(d.id);
    });
    var x = window.scrollX;
    var y = window.scrollY;
    current.replaceWith(document.importNode(fresh, true));
    open.forEach(function (id) {
      var details = document.getElementById(id);
      if (details) {
        details.open = true;
      }
    });
    window.scrollTo(x, y);
    stamp();
  }

  function refresh() {
    if (busy || paused() || document.hidden || typing()) {
      return;
    }
    busy = true;
    fetch(window.location.href, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "X-Requested-With": "refresh" }
    })
      .then(function (response) {
        if (response.redirected && response.url.indexOf("/admin/login") !== -1) {
          window.location.reload(); /* the session ended: show the login */
          return null;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (html !== null && !paused() && !typing()) {
          swap(html);
        }
      })
      .catch(function (error) {
        status.textContent = "refresh failed (" + error.message + "); retrying";
      })
      .then(function () {
        busy = false;
      });
  }

  button.addEventListener("click", function () {
    setPaused(!paused());
    if (!paused()) {
      stamp();
      refresh();
    }
  });
  bar.hidden = false;
  stamp();
  show();
  window.setInterval(refresh, seconds * 1000);
})();
