#!/usr/bin/env python3
"""Fills a template of dev/ (dev/idgate.toml, dev/nginx.conf): `render.py TEMPLATE NAME=VALUE...`.

`{{NAME}}` takes the value given for NAME; `{{NAME|default}}` takes the default when none is
given (a default may hold other fields, and `\\n` for a new line). A field with neither, or a
value given for a field the template does not have, is an error: a typo never passes silently.
Values are inserted as they are, never read again for fields. tests/common/dev.rs does the same
for the tests.
"""
import re
import sys

NAME = re.compile(r"[A-Z_]+")


def render(text, values, used, i=0, nested=False):
    out = []
    while i < len(text):
        if text.startswith("{{", i):
            m = NAME.match(text, i + 2)
            if not m:
                raise SystemExit(f"render: a field without a NAME at offset {i}")
            name, j = m.group(0), m.end()
            default = None
            if text.startswith("|", j):
                default, j = render(text, values, used, j + 1, nested=True)
            if not text.startswith("}}", j):
                raise SystemExit(f"render: field {name} is not closed")
            i = j + 2
            if name in values:
                used.add(name)
                out.append(values[name])
            elif default is not None:
                out.append(default.replace("\\n", "\n"))
            else:
                raise SystemExit(f"render: no value for {name}")
        elif nested and text.startswith("}}", i):
            return "".join(out), i
        else:
            out.append(text[i])
            i += 1
    return "".join(out), i


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: render.py TEMPLATE NAME=VALUE...")
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    values = dict(arg.split("=", 1) for arg in sys.argv[2:])
    used = set()
    rendered, _ = render(text, values, used)
    unknown = set(values) - used
    if unknown:
        raise SystemExit(f"render: {sys.argv[1]} has no field {', '.join(sorted(unknown))}")
    sys.stdout.write(rendered)


main()
