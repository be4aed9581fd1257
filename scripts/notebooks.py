"""Executes Evcxr notebooks headlessly (nbclient) and checks what they show.

Fails on any cell error or output on stderr (where Evcxr reports a panic), on a notebook without a table (Markdown) or an inline plot (SVG), on
outputs over 300 kB, on an e-mail address or a path of this machine in any output, and, unless
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
from nbclient.exceptions import CellExecutionError

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


def problems(path, nb):
    found = []
    # Evcxr reports a panic on stderr and lets the cell succeed, so any stderr fails the notebook.
    for number, cell in enumerate(nb.cells, 1):
        said = "".join(o.text for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == "stderr")
        if said.strip():
            found.append(f"cell {number} wrote to stderr (a panic?):\n{said[:2000]}")
    shown = outputs(nb)
    if not any("|---" in o.get("data", {}).get("text/markdown", "") for o in shown):
        found.append("no table (a text/markdown output)")
    if not any("<svg" in o.get("data", {}).get("text/html", "") for o in shown):
        found.append("no inline plot (a text/html output with an SVG)")
    size = len(nbformat.writes(nb).encode())
    if size > MAX_BYTES:
        found.append(f"{size} bytes with outputs, over {MAX_BYTES}")
    private = [os.path.expanduser("~"), os.getcwd(), "/tmp/"]
    for text in (t for o in shown for t in texts(o)):
        if EMAIL.search(text):
            found.append(f"an e-mail address in an output: {EMAIL.search(text).group()!r}")
        found += [f"a path of this machine ({p}) in an output" for p in private if p in text]
    return [f"{path}: {p}" for p in found]


def shown_outputs(nb):
    return [[(o.output_type, o.get("name"), o.get("text"), o.get("data")) for o in cell.get("outputs", [])]
            for cell in nb.cells if cell.cell_type == "code"]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--write", action="store_true", help="save the executed notebooks in place")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (the first compiles the crates)")
    args = parser.parse_args()
    failed = []
    for path in args.notebooks:
        committed = nbformat.read(path, as_version=4)
        nb = nbformat.read(path, as_version=4)
        started = time.monotonic()
        client = NotebookClient(nb, timeout=args.timeout, kernel_name="rust", record_timing=False,
                                resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
        try:
            client.execute()
        except CellExecutionError as error:
            # Evcxr writes compile errors to the cell's outputs, not to the error message.
            said = "".join(t for o in outputs(nb) if o.output_type != "execute_result" for t in texts(o))
            failed.append(f"{path}: a cell failed:\n{error}\n{ANSI.sub('', said)[-4000:]}")
            continue
        print(f"[notebooks] {path}: executed in {time.monotonic() - started:.0f} s", file=sys.stderr)
        found = problems(path, nb)
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
