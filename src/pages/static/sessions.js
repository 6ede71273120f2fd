// idgate's sessions page: its buttons end one session (DELETE /me/sessions/{id}) or every other
// one (DELETE /me/sessions?others=true), then show the list again. A file of its own, so the
// page's strict CSP holds.
(function () {
  'use strict';
  var failed = document.getElementById('sessions-failed');
  function end(url) {
    fetch(url, { method: 'DELETE', credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
      .then(function (res) {
        if (res.ok) { window.location.reload(); return; }
        if (failed) { failed.hidden = false; }
      }, function () { if (failed) { failed.hidden = false; } });
  }
  document.addEventListener('click', function (e) {
    var button = e.target instanceof Element ? e.target.closest('button') : null;
    if (!button) { return; }
    var id = button.getAttribute('data-end');
    if (id) { end('/me/sessions/' + encodeURIComponent(id)); return; }
    if (button.hasAttribute('data-end-others')) { end('/me/sessions?others=true'); }
  });
})();
