"""math-verify as a long-lived JSON-lines grading server: the reference side of eval's
grader::reference, which embeds this file and runs it as `python -c <this file>` (so the
binary needs no checkout), with the interpreter of .venv-grader (tools/grader/venv.sh).

Protocol, one JSON object a line, UTF-8:
  start-up, once:  {"ready": true, "math_verify": "0.9.0", "latex2sympy2_extended": "...",
                    "sympy": "...", "python": "..."}
  request:         {"id": 7, "gold": "\\frac{1}{2}", "response": "... \\boxed{0.5}"}
  reply:           {"id": 7, "correct": true, "extracted": "...", "gold_extracted": "...",
                    "error": null}
One reply per request line, in order, flushed at once. A case that raises gives
"correct": false and "error": "<ExceptionType>: message"; a line that is not a request gives a
reply with "error" and the id it carried (null when none). End of input ends the server
(exit 0). Only replies go to stdout: warnings, logging and stray prints go to stderr.
"""

import sys

# `python -c` puts the working directory first on sys.path: a stray math_verify.py or sympy/
# there must not stand in for the pinned packages.
if sys.path and sys.path[0] == "":
    del sys.path[0]

import json
import os
import platform
import signal
from importlib import metadata


def versions():
    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    return {
        "math_verify": version("math-verify"),
        "latex2sympy2_extended": version("latex2sympy2_extended"),
        "sympy": version("sympy"),
        "python": platform.python_version(),
    }


def last_as_text(parsed):
    # parse() gives [sympy object, the extracted text] (or [text] when only the fallback
    # matched): the last element is what was extracted; an empty list means nothing was.
    return str(parsed[-1]) if parsed else None


def main():
    # The protocol keeps the real stdout to itself; fd 1 and sys.stdout become stderr, so
    # nothing a library prints (Python or C) can interleave with a reply.
    replies = os.fdopen(os.dup(1), "w", encoding="ascii", newline="\n")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # The client owns our lifetime (end of input, or a kill on its timeout); a Ctrl-C meant for
    # it must not print a traceback from the middle of sympy.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    try:
        from math_verify import parse, verify
        from math_verify.errors import TimeoutException
    except Exception as e:  # noqa: BLE001 - any import failure means the same to the client
        print(f"math-verify is not importable with {sys.executable}: {type(e).__name__}: {e}",
              file=sys.stderr)
        return 2

    def send(obj):
        # ASCII escapes keep every reply valid UTF-8 whatever the strings hold.
        replies.write(json.dumps(obj, ensure_ascii=True) + "\n")
        replies.flush()

    def grade(gold, response):
        # Exactly the paper's harness (VS repo, tasks/math_eval.py): gold wrapped in $...$,
        # both parsed without parse's own timeout, verify with its defaults (timeout_seconds=5,
        # float_rounding=6, numeric_precision=15, strict=True).
        gold_parsed = parse("$" + gold + "$", parsing_timeout=None)
        pred_parsed = parse(response, parsing_timeout=None)
        correct = verify(gold_parsed, pred_parsed)
        return bool(correct), last_as_text(pred_parsed), last_as_text(gold_parsed)

    send({"ready": True, **versions()})

    for raw in sys.stdin.buffer:
        reply = {"id": None, "correct": False, "extracted": None, "gold_extracted": None,
                 "error": None}
        try:
            request = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            reply["error"] = f"malformed request: {type(e).__name__}: {e}"
            send(reply)
            continue
        if not isinstance(request, dict):
            reply["error"] = "malformed request: not a JSON object"
            send(reply)
            continue
        reply["id"] = request.get("id")
        gold, response = request.get("gold"), request.get("response")
        if not isinstance(request.get("id"), int) or isinstance(request.get("id"), bool):
            reply["error"] = "malformed request: 'id' must be an integer"
        elif not isinstance(gold, str) or not isinstance(response, str):
            reply["error"] = "malformed request: 'gold' and 'response' must be strings"
        else:
            try:
                reply["correct"], reply["extracted"], reply["gold_extracted"] = grade(gold, response)
            # TimeoutException derives from BaseException, not Exception.
            except (Exception, TimeoutException) as e:  # noqa: BLE001 - reported, not hidden
                reply["error"] = f"{type(e).__name__}: {e}"
        send(reply)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        # The client went away mid-reply: nothing left to answer.
        sys.exit(0)
