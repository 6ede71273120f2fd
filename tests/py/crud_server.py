"""A small CRUD-compatible HTTP service for idgate's tests, storing into a real MongoDB-wire server.

The original Mia-Platform CRUD Service cannot be installed here, so this fake implements the few
endpoints idgate uses, with the semantics of its public documentation:

- Mia-Platform CRUD Service docs, "CRUD Service" overview and usage — sections "CRUD Endpoints"
  (Create: "Insert or Update one document" `POST /upsert-one`; Read: "Get a list of documents",
  "Get a single document by _id", "Paginate" `_l`/`_sk`, "Sort" `_s`, "Filters with MongoDB
  Query" `_q`, "Count" `GET /count`; Update `PATCH /{id}`), "`__STATE__` management"
  (`_st`, default PUBLIC) and "Predefined Collection Properties" (`_id`, `creatorId`,
  `createdAt`, `updaterId`, `updatedAt`, `__STATE__`, which a body may not set);
- the `userid` header names the writer in `creatorId` / `updaterId` (default "public");
- the open-source service (github.com/mia-platform/crud-service) for `upsert-one`: one
  `findOneAndUpdate` of `{$and: [query, state]}` with `upsert`, `$setOnInsert` completed with
  `creatorId`, `createdAt` and the collection's state on insert, returning the document after;
  a duplicate key answers 409.

- the same docs, "State Transitions": `POST /{id}/state` with `{"stateTo": S}`, only along the
  documented table (PUBLIC→DRAFT|TRASH, DRAFT→PUBLIC|TRASH, TRASH→DRAFT|DELETED,
  DELETED→TRASH); any other transition answers 400;
- the same docs, "Create" ("The JSON document sent to CRUD is validated against the JSON schema
  defined in Console"): with `--schema-fields a,b,…` (the collection's custom properties), a
  body naming any other field (its first dotted segment) in an update command answers 400
  `body/<command> must NOT have additional properties`, as the service's schema validation does;
- "Indexes": the collection's own indexes. By default a unique index on (realm, providerId,
  providerUserId), as a collection definition may declare; `--identity-index none` leaves it
  out, as the users collection of Mia's authentication-service docs (which declare none).

It also refuses every request without `--require-header NAME:VALUE` (401), standing for the API
key a gateway would check, so a test proves idgate forwards its configured headers.

With `--log-traceparent` it writes the W3C `traceparent` of every request that has one to
stderr (`crud_server.py: traceparent <method> <path> <value>`), for idgate's trace test.

Usage: crud_server.py --mongo-uri URI [--database D] [--collection C] [--port 0]
                      [--require-header NAME:VALUE] [--state-on-insert PUBLIC]
                      [--schema-fields F1,F2,…] [--identity-index unique|none]
                      [--log-traceparent]
Prints one line on stdout when ready: {"url": "http://127.0.0.1:PORT/<collection>"}.
"""

import argparse
import datetime
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit, unquote

import pymongo
from bson import ObjectId
from pymongo.errors import DuplicateKeyError, PyMongoError

STANDARD_FIELDS = ("_id", "creatorId", "createdAt", "updaterId", "updatedAt", "__STATE__")
ALLOWED_COMMANDS = ("$set", "$unset", "$inc", "$mul", "$currentDate", "$setOnInsert",
                    "$push", "$addToSet", "$pull")
STATES = ("PUBLIC", "DRAFT", "TRASH", "DELETED")
TRANSITIONS = {"PUBLIC": ("DRAFT", "TRASH"), "DRAFT": ("PUBLIC", "TRASH"),
               "TRASH": ("DRAFT", "DELETED"), "DELETED": ("TRASH",)}
MAX_LIMIT = 200


class BadRequest(Exception):
    pass


def to_json(value):
    """BSON → the service's JSON: ObjectIds as hex strings, dates as ISO strings."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


def parse_id(raw):
    return ObjectId(raw) if ObjectId.is_valid(raw) else raw


def state_query(params):
    raw = params.get("_st", ["PUBLIC"])[0]
    states = [s for s in raw.split(",") if s]
    if not states or any(s not in STATES for s in states):
        raise BadRequest(f"_st: invalid state list {raw!r}")
    return {"__STATE__": {"$in": states}}


def search_query(params, extra=None):
    parts = []
    if "_q" in params:
        try:
            query = json.loads(params["_q"][0])
        except ValueError as e:
            raise BadRequest(f"_q is not JSON: {e}")
        if not isinstance(query, dict):
            raise BadRequest("_q must be a JSON object")
        if query:
            parts.append(query)
    if extra:
        parts.append(extra)
    parts.append(state_query(params))
    return {"$and": parts}


def check_commands(commands, schema=None):
    if not isinstance(commands, dict):
        raise BadRequest("body must be an object of update commands")
    for key, fields in commands.items():
        if key not in ALLOWED_COMMANDS:
            raise BadRequest(f"Unknown operator: {key}")
        for field in STANDARD_FIELDS:
            if isinstance(fields, dict) and field in fields:
                raise BadRequest(f"{field} cannot be specified")
        if schema is not None and isinstance(fields, dict):
            for field in fields:
                if field.split(".")[0] not in schema:
                    raise BadRequest(f"body/{key} must NOT have additional properties")


def make_handler(args, collection):
    header_name, _, header_value = (args.require_header or ":").partition(":")
    header_name = header_name.strip().lower()
    prefix = "/" + args.collection
    schema = None
    if args.schema_fields:
        schema = set(f for f in args.schema_fields.split(",") if f)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):  # quiet: the test output is already busy
            pass

        def answer(self, status, body):
            data = json.dumps(to_json(body)).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, status, message):
            reasons = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                       409: "Conflict", 500: "Internal Server Error"}
            self.answer(status, {"statusCode": status, "error": reasons.get(status, "Error"),
                                 "message": message})

        def body(self):
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw or b"null")
            except ValueError as e:
                raise BadRequest(f"body is not JSON: {e}")

        def route(self, method):
            url = urlsplit(self.path)
            params = parse_qs(url.query)
            if args.log_traceparent and self.headers.get("traceparent"):
                sys.stderr.write(f"crud_server.py: traceparent {method} {url.path} "
                                 f"{self.headers.get('traceparent')}\n")
                sys.stderr.flush()
            if header_name and self.headers.get(header_name) != header_value:
                return self.error(401, f"missing or wrong `{header_name}` header")
            if url.path != prefix and not url.path.startswith(prefix + "/"):
                return self.error(404, f"no collection at {url.path}")
            rest = unquote(url.path[len(prefix):].lstrip("/"))
            writer = self.headers.get("userid") or "public"
            now = datetime.datetime.now(datetime.timezone.utc)
            try:
                if method == "GET" and rest == "":
                    limit = min(int(params.get("_l", [MAX_LIMIT])[0]), MAX_LIMIT)
                    skip = int(params.get("_sk", [0])[0])
                    cursor = collection.find(search_query(params))
                    sort = [s for v in params.get("_s", []) for s in v.split(",") if s]
                    if sort:
                        cursor = cursor.sort([(s.lstrip("-"), -1 if s.startswith("-") else 1)
                                              for s in sort])
                    return self.answer(200, list(cursor.skip(skip).limit(limit)))
                if method == "GET" and rest == "count":
                    return self.answer(200, collection.count_documents(search_query(params)))
                if method == "POST" and rest == "upsert-one":
                    commands = self.body()
                    check_commands(commands, schema)
                    commands.setdefault("$set", {})
                    commands["$set"].update({"updaterId": writer, "updatedAt": now})
                    commands.setdefault("$setOnInsert", {})
                    commands["$setOnInsert"].update({"creatorId": writer, "createdAt": now,
                                                     "__STATE__": args.state_on_insert})
                    doc = collection.find_one_and_update(
                        search_query(params), commands, upsert=True,
                        return_document=pymongo.ReturnDocument.AFTER)
                    if doc is None:
                        # secantusdb may answer a raced upsert with no document where MongoDB
                        # raises E11000: answer it as the service answers a duplicate key.
                        return self.error(409, "resource already exists")
                    return self.answer(200, doc)
                if method == "GET" and rest and "/" not in rest:
                    doc = collection.find_one(search_query(params, {"_id": parse_id(rest)}))
                    if doc is None:
                        return self.error(404, "The requested resource was not found")
                    return self.answer(200, doc)
                if method == "POST" and rest.endswith("/state") and rest.count("/") == 1:
                    body = self.body()
                    target = body.get("stateTo") if isinstance(body, dict) else None
                    if target not in STATES:
                        raise BadRequest("body/stateTo must be one of the states")
                    oid = parse_id(rest[: -len("/state")])
                    doc = collection.find_one({"_id": oid})
                    if doc is None:
                        return self.error(404, "The requested resource was not found")
                    if target not in TRANSITIONS.get(doc.get("__STATE__"), ()):
                        raise BadRequest(f"transition {doc.get('__STATE__')} -> {target} "
                                         "is not allowed")
                    collection.update_one({"_id": oid}, {"$set": {
                        "__STATE__": target, "updaterId": writer, "updatedAt": now}})
                    self.send_response(204)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return None
                if method == "PATCH" and rest and "/" not in rest:
                    commands = self.body()
                    check_commands(commands, schema)
                    commands.setdefault("$set", {})
                    commands["$set"].update({"updaterId": writer, "updatedAt": now})
                    doc = collection.find_one_and_update(
                        search_query(params, {"_id": parse_id(rest)}), commands,
                        return_document=pymongo.ReturnDocument.AFTER)
                    if doc is None:
                        return self.error(404, "The requested resource was not found")
                    return self.answer(200, doc)
                return self.error(404, f"{method} {url.path} is not an endpoint of this service")
            except BadRequest as e:
                return self.error(400, str(e))
            except DuplicateKeyError:
                return self.error(409, "resource already exists")
            except PyMongoError as e:
                return self.error(500, f"database error: {type(e).__name__}")

        def do_GET(self):
            self.route("GET")

        def do_POST(self):
            self.route("POST")

        def do_PATCH(self):
            self.route("PATCH")

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mongo-uri", required=True)
    p.add_argument("--database", default="crud")
    p.add_argument("--collection", default="users")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--require-header", default="")
    p.add_argument("--state-on-insert", default="PUBLIC", choices=STATES)
    p.add_argument("--schema-fields", default="")
    p.add_argument("--identity-index", default="unique", choices=("unique", "none"))
    p.add_argument("--log-traceparent", action="store_true")
    args = p.parse_args()

    client = pymongo.MongoClient(args.mongo_uri, serverSelectionTimeoutMS=5000)
    collection = client[args.database][args.collection]
    # The collection definition's unique index, as the service would force it at startup
    # (hence not `preserve_`-prefixed: the service owns it).
    if args.identity_index == "unique":
        collection.create_index([("realm", 1), ("providerId", 1), ("providerUserId", 1)],
                                unique=True, name="identity")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args, collection))
    server.daemon_threads = True
    print(json.dumps({"url": f"http://127.0.0.1:{server.server_port}/{args.collection}"}),
          flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    server.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
