// idgate login callback: exchanges the IdP's code for a session, then goes back to the page
// the user first asked for. The built-in page carries it inline, in its <head>, before the
// stylesheet, allowed by its hash in the page's CSP: the exchange starts at once and waits
// for no other request, so the page adds one round trip to the login. It is also served as a
// file (assets.callback_js) for operator templates. Without JavaScript the page's form posts
// the same code to /web-login/finish instead.
(function () {
  'use strict';
  var meta = document.querySelector('meta[name="idgate-callback"]');
  var form = document.getElementById('finish');
  var mode = (meta && meta.getAttribute('content')) || (form && form.getAttribute('data-mode'));
  mode = mode === 'query' ? 'query' : 'body';
  var params = new URLSearchParams(window.location.search);
  var code = params.get('code');
  var state = params.get('state');
  var iss = params.get('iss');
  function fail() {
    var working = document.getElementById('working');
    var failed = document.getElementById('failed');
    if (!working || !failed) { return; }
    working.hidden = true;
    failed.hidden = false;
    var heading = document.getElementById('failed-heading');
    if (heading) { heading.focus(); }
  }
  function failWhenShown() {
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', fail);
    } else {
      fail();
    }
  }
  if (!code || !state) { failWhenShown(); return; }
  // The code must not linger in the address bar or the history.
  window.history.replaceState(null, '', window.location.pathname);
  var sent = { code: code, state: state };
  if (iss) { sent.iss = iss; }
  var url = '/oauth/token';
  var init = { method: 'POST', credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
  if (mode === 'query') {
    url += '?' + new URLSearchParams(sent).toString();
  } else {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(sent);
  }
  fetch(url, init).then(function (res) {
    if (res.ok) {
      window.location.replace(res.headers.get('Location') || '/');
      return;
    }
    failWhenShown();
  }, failWhenShown);
})();
