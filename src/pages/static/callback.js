// idgate login callback: exchanges the IdP's code for a session, then goes back to the page
// the user first asked for. Served as a file so the page's strict CSP holds. Without
// JavaScript the page's form posts the same code to /web-login/finish instead.
(function () {
  'use strict';
  var form = document.getElementById('finish');
  var working = document.getElementById('working');
  var failed = document.getElementById('failed');
  if (!form || !working || !failed) { return; }
  var mode = form.getAttribute('data-mode') === 'query' ? 'query' : 'body';
  var code = form.elements.namedItem('code').value;
  var state = form.elements.namedItem('state').value;
  // RFC 9207: the IdP's `iss`, when it sent one, goes along so idgate can tell IdPs apart.
  var issField = form.elements.namedItem('iss');
  var params = { code: code, state: state };
  if (issField && issField.value) { params.iss = issField.value; }
  function fail() {
    working.hidden = true;
    failed.hidden = false;
    var heading = document.getElementById('failed-heading');
    if (heading) { heading.focus(); }
  }
  // The code must not linger in the address bar or the history.
  window.history.replaceState(null, '', window.location.pathname);
  var url = '/oauth/token';
  var init = { method: 'POST', credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
  if (mode === 'query') {
    url += '?' + new URLSearchParams(params).toString();
  } else {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(params);
  }
  fetch(url, init).then(function (res) {
    if (res.ok) {
      window.location.replace(res.headers.get('Location') || '/');
      return;
    }
    fail();
  }, fail);
})();
