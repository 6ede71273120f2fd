#!/usr/bin/env python3
"""Logs a scripted browser in through the development IdP (tests/js/idp.mjs) and prints the
session cookies a protected site set, as one `Cookie` header value.

    scripts/idp-login.py URL [--login NAME] [--exchange PATH] [--count N [--people]]

Starts like a browser navigating to URL (a page a relying party protects: Apache with
mod_auth_openidc, or Nginx with idgate, in scripts/bench), follows the redirects to the IdP,
fills its development login form (any login and password are accepted), follows the redirects
back through the relying party's callback, and checks that URL finally answers 200. Prints the
cookies the browser then sends to URL's host, `name=value; name=value`, on stdout; exits 1
with the reason on stderr when any step goes otherwise.

--exchange PATH: the relying party's callback is a page whose script posts the authorization
response's `code` and `state`, as JSON, to PATH on the same origin (idgate's login pages and
`/oauth/token`); this does what that script does, then asks for URL again.

--count N: logs in N times, each as a new browser (its own cookies), and prints the last
login's cookies (scripts/bench-peer times the relying party's side of many logins this way).
With --people, each of the N is another person too (NAME-1 ... NAME-N): N people's first
logins, not one person logging in N times (which, past idgate's `max_per_user`, also ends their
oldest session each time).

Only the standard library: scripts/bench runs it with the system python3.
"""

import argparse
import http.cookiejar
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

ACCEPT = "text/html,application/xhtml+xml,*/*;q=0.8"
MAX_REDIRECTS = 20


def fail(message):
    print(f"idp-login: {message}", file=sys.stderr)
    sys.exit(1)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by `walk`, one at a time, so each hop can be checked."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def open_url(opener, url, data=None):
    """One request; returns (status, headers, body) also for 3xx/4xx/5xx answers."""
    request = urllib.request.Request(url, data=data, headers={"Accept": ACCEPT})
    try:
        with opener.open(request, timeout=20) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except OSError as e:
        fail(f"{url}: {e}")


def walk(opener, url, data=None):
    """Requests url and follows redirects (as GET); returns the final (url, status, body)."""
    for _ in range(MAX_REDIRECTS):
        status, headers, body = open_url(opener, url, data)
        data = None
        if status in (301, 302, 303, 307, 308):
            location = headers.get("Location")
            if not location:
                fail(f"{url} answered {status} without a Location")
            url = urllib.parse.urljoin(url, location)
            continue
        return url, status, body
    fail(f"more than {MAX_REDIRECTS} redirects from {url}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--login", default="bench-user")
    parser.add_argument("--exchange", metavar="PATH")
    parser.add_argument("--count", type=int, default=1, metavar="N")
    parser.add_argument("--people", action="store_true")
    args = parser.parse_args()
    if args.count < 1:
        fail("--count must be at least 1")
    for i in range(args.count):
        name = f"{args.login}-{i + 1}" if args.people else args.login
        cookies = login(args, name)
    print(cookies)


def login(args, name):
    """One login of `name` as a new browser; returns the cookies it then sends to args.url."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())

    form_url, status, body = walk(opener, args.url)
    if status != 200:
        fail(f"expected the IdP's login form, got {status} at {form_url}")
    match = re.search(rb'<form[^>]*action="([^"]+)"', body)
    if not match:
        fail(f"no form on the page at {form_url}")
    action = urllib.parse.urljoin(form_url, match.group(1).decode())
    fields = {"prompt": "login", "login": name, "password": "any-password"}
    final_url, status, _ = walk(opener, action, urllib.parse.urlencode(fields).encode())
    if args.exchange:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(final_url).query)
        if status != 200 or "code" not in query or "state" not in query:
            fail(f"expected the callback page with a code and a state, got {status} at {final_url}")
        body = {"code": query["code"][0], "state": query["state"][0]}
        request = urllib.request.Request(
            urllib.parse.urljoin(final_url, args.exchange),
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with opener.open(request, timeout=20) as resp:
                resp.read()
        except urllib.error.HTTPError as e:
            fail(f"{args.exchange} answered {e.code}: {e.read()[:300]!r}")
        except OSError as e:
            fail(f"{args.exchange}: {e}")
        final_url, status, _ = walk(opener, args.url)
    if status != 200 or final_url != args.url:
        fail(f"the login ended with {status} at {final_url}, not 200 at {args.url}")

    # The cookies this browser sends to the protected page: a request made only to read them.
    probe = urllib.request.Request(args.url)
    jar.add_cookie_header(probe)
    cookies = probe.get_header("Cookie")
    if not cookies:
        fail(f"logged in, but no cookie is set for {args.url}")
    return cookies


if __name__ == "__main__":
    main()
