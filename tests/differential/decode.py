"""Reads JSON-RPC bodies the way a Python MCP server built on `json.loads`
does, to compare with mcp-authz: exact key names, the last duplicate wins,
NaN/Infinity accepted, a UTF-8 BOM accepted on bytes input.

Input: one base64-encoded body per line on stdin. Output: one JSON line per
body, {"ok":true,"batch":b,"messages":[{"jsonrpc","method","name","uri","arguments"}]}
or {"ok":false,"error":"..."}. Standard library only.

Values JSON cannot carry back (non-finite floats, lone surrogates) are written
as {"$python": repr(value)} so the reading stays comparable and never equal to
what a strict decoder reads.
"""

import base64
import json
import math
import sys


def portable(v):
    """The value with everything json.dumps(allow_nan=False) refuses marked."""
    if isinstance(v, float) and not math.isfinite(v):
        return {"$python": repr(v)}
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            return {"$python": repr(v)}
        return v
    if isinstance(v, list):
        return [portable(x) for x in v]
    if isinstance(v, dict):
        return {portable_key(k): portable(x) for k, x in v.items()}
    return v


def portable_key(k):
    try:
        k.encode("utf-8")
        return k
    except UnicodeEncodeError:
        return "$python:" + repr(k)


def message(m):
    if not isinstance(m, dict):
        raise ValueError("a message must be an object")
    reading = {"jsonrpc": m.get("jsonrpc"), "method": m.get("method")}
    params = m.get("params")
    if isinstance(params, dict):
        reading["name"] = params.get("name")
        reading["uri"] = params.get("uri")
        reading["arguments"] = params.get("arguments")
    elif m.get("method") == "tools/call":
        raise ValueError("tools/call params must be an object")
    return portable(reading)


def decode(body):
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as e:
        return {"ok": False, "error": str(e)}
    try:
        if isinstance(value, list):
            return {"ok": True, "batch": True, "messages": [message(m) for m in value]}
        return {"ok": True, "batch": False, "messages": [message(value)]}
    except ValueError as e:
        return {"ok": False, "error": str(e)}


def main():
    for line in sys.stdin:
        try:
            body = base64.b64decode(line.strip(), validate=True)
        except ValueError as e:
            result = {"ok": False, "error": "bad base64 input: " + str(e)}
        else:
            result = decode(body)
        sys.stdout.write(json.dumps(result, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
