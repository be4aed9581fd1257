"""Executes Evcxr notebooks headlessly (nbclient) and checks what they show.

Fails on any cell error or output on stderr (where Evcxr reports a panic), on a notebook without a table (Markdown) or an inline plot (SVG), on
outputs over 300 kB, on an e-mail address, a value of the --private file (names, phones,
addresses: matched as words and as digit runs) or a path of this machine in any output, and, unless
--write is given, on outputs that differ from the committed ones (stale notebooks). With --write
the executed notebooks replace the given files.
"""

import argparse
import os
import re
import sys
import time

import nbformat
from nbclient import NotebookClient

MAX_BYTES = 300_000
ANSI = re.compile(r"\x1b\[[0-9;]*m")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def outputs(nb):
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def texts(output):
    if output.output_type == "error":
        yield "\n".join([f"{output.ename}: {output.evalue}", *output.traceback])
    if output.output_type == "stream":
        yield output.text
    for value in output.get("data", {}).values():
        yield value if isinstance(value, str) else "".join(value)


def words(text):
    """The words and the digit runs of `text` (a phone matches by its digits alone)."""
    return set(re.findall(r"[^\W\d_]{3,}", text.lower())) | set(re.findall(r"\d{6,}", re.sub(r"[\s().+-]", "", text)))


def problems(path, nb, private):
    found = []
    # Evcxr reports a panic on stderr and lets the cell succeed, so any stderr fails the notebook.
    for number, cell in enumerate(nb.cells, 1):
        said = "".join(o.text for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == "stderr")
        if said.strip():
            found.append(f"cell {number} wrote to stderr (a panic?):\n{said[:2000]}")
    shown = outputs(nb)
    own = words("\n".join(cell.source for cell in nb.cells))
    if not any("|---" in o.get("data", {}).get("text/markdown", "") for o in shown):
        found.append("no table (a text/markdown output)")
    if not any("<svg" in o.get("data", {}).get("text/html", "") for o in shown):
        found.append("no inline plot (a text/html output with an SVG)")
    size = len(nbformat.writes(nb).encode())
    if size > MAX_BYTES:
        found.append(f"{size} bytes with outputs, over {MAX_BYTES}")
    local = [p for p in (os.path.expanduser("~"), os.getcwd(), "/tmp/") if p != "/"]
    for text in (t for o in shown for t in texts(o)):
        if EMAIL.search(text):
            found.append("an e-mail address in an output (not shown here)")
        found += [f"a path of this machine ({p}) in an output" for p in local if p in text]
        # Words the notebook itself spells (labels, contract names) are not leaks.
        leaked = words(text) & private - own
        if leaked:  # counted, never printed: the check must not leak them into CI logs itself
            found.append(f"{len(leaked)} personal value(s) of the snapshot in an output")
    return [f"{path}: {p}" for p in found]


def shown_outputs(nb):
    return [[(o.output_type, o.get("name"), o.get("text"), o.get("data")) for o in cell.get("outputs", [])]
            for cell in nb.cells if cell.cell_type == "code"]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--write", action="store_true", help="save the executed notebooks in place")
    parser.add_argument("--private", help="a file of personal values (one per line) no output may show")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (the first compiles the crates)")
    args = parser.parse_args()
    # Whole names and digit runs of the personal values; common words of three letters or more
    # that are also somebody's name would be false alarms, so values are matched whole.
    private = set()
    if args.private:
        for line in open(args.private, encoding="utf-8"):
            value = line.strip().lower()
            if re.fullmatch(r"[^\W\d_]{3,}", value):
                private.add(value)
            digits = re.sub(r"[\s().+-]", "", value)
            if re.fullmatch(r"\d{6,}", digits):
                private.add(digits)
    failed = []
    for path in args.notebooks:
        committed = nbformat.read(path, as_version=4)
        nb = nbformat.read(path, as_version=4)
        started = time.monotonic()
        client = NotebookClient(nb, timeout=args.timeout, kernel_name="rust", record_timing=False,
                                resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
        try:
            client.execute()
        except Exception as error:  # a cell error, a timeout, a dead kernel: report and go on
            # Evcxr writes compile errors to the cell's outputs, not to the error message.
            said = "".join(t for o in outputs(nb) if o.output_type != "execute_result" for t in texts(o))
            failed.append(f"{path}: a cell failed:\n{error}\n{ANSI.sub('', said)[-4000:]}")
            continue
        print(f"[notebooks] {path}: executed in {time.monotonic() - started:.0f} s", file=sys.stderr)
        found = problems(path, nb, private)
        if not args.write and not found and shown_outputs(nb) != shown_outputs(committed):
            found.append(f"{path}: its committed outputs differ from a fresh run: run scripts/notebooks --write and commit")
        failed += found
        if args.write and not found:
            nbformat.write(nb, path)
    for f in failed:
        print(f"[notebooks] ERROR {f}", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
