#!/usr/bin/env python3
"""`compare -o html` in a real browser: Debian's chromium, headless, driven over the DevTools
protocol on --remote-debugging-pipe (fd 3 commands, fd 4 replies, NUL-separated JSON), stdlib only.

The page for the bundled example (the seed node in its two iptables layouts, examples/seed/) is
written with --output-file and loaded from a file:// URL. Against `compare -o json` for the same
inputs: one cell per (port, source, destination) with flows, each cell's data-outcome, data-src,
data-dst, data-port and data-flows as the JSON's flows say, its computed colour that of its
outcome's legend swatch (five distinct colours), the legend's counts; then every cell is clicked
with real mouse events at its box (Input.dispatchMouseEvent) and the panel must show exactly that
cell's flows with both sides' verdict, summary, reason, deciding rule and meaning as in the JSON.
The page must load nothing but itself and throw no script error.

Exit 77 (SKIP) without chromium. With --screenshot PNG it also clicks the first changed cell and
saves the page as docs/compare.md shows it.

    test_compare_html.py --dpinspect build/cli/dpinspect [--screenshot docs/compare-html.png]
"""
import argparse
import base64
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import struct
import time
import zlib
from urllib.parse import quote

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
# The bundled example: both sides are snapshots under examples/seed/, names from the seed's
# kubectl output.
COMPARE = ["compare", "--before", "examples/seed/iptables-nft.snapshot.json",
           "--after", "examples/seed/platform-iptables-nft.snapshot.json",
           "--k8s", "tests/fixtures/k8s/seed.json",
           "--port", "tcp/80", "--port", "tcp/9001", "--port", "tcp/6379"]
BROWSERS = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
# The whole test (chromium's start included) must end within this many seconds.
DEADLINE_S = 60
# The cell a multi-flow cell shows: the most severe outcome (core/compare_html.cpp).
SEVERITY = ["same-allow", "same-deny", "meaning", "indeterminate", "verdict"]


class Timeout(Exception):
    pass


class Browser:
    """A headless chromium and one page, over the DevTools pipe."""

    def __init__(self, exe, width, height):
        self.profile = tempfile.mkdtemp(prefix="dpi-chromium-")
        to_r, self.to_w = os.pipe()      # our commands: chromium reads them on fd 3
        self.from_r, from_w = os.pipe()  # its replies and events: written on fd 4
        # Above any descriptor the child has, so that the dup2 to 3 and 4 below never meets
        # itself (a dup2 onto the same number would keep close-on-exec).
        child_in = os.dup2(to_r, 20)
        child_out = os.dup2(from_w, 21)
        os.close(to_r)
        os.close(from_w)

        def wire():
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        args = [exe, "--headless", "--disable-gpu", "--remote-debugging-pipe",
                f"--user-data-dir={self.profile}", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-default-apps", "--mute-audio",
                "--hide-scrollbars", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # chromium refuses to run as root with its sandbox
        # Its own process group: every renderer and helper goes with it in close().
        # Its log goes to a file: a pipe nobody reads could fill and stall it.
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log, preexec_fn=wire, close_fds=False,
                                     start_new_session=True)
        os.close(child_in)
        os.close(child_out)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        for fd in (self.to_w, self.from_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("no answer from chromium")
            ready, _, _ = select.select([self.from_r], [], [], left)
            if ready:
                chunk = os.read(self.from_r, 1 << 16)
                if not chunk:
                    self.log.seek(0)
                    err = self.log.read().decode(errors="replace")
                    raise RuntimeError(f"chromium closed the DevTools pipe (exit {self.proc.poll()}): {err[-2000:]}")
                self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def call(self, method, params=None, session=True, timeout=15):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))

    def open(self, url, width, height):
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def eval(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"script error: {r['exceptionDetails']}")
        return r["result"].get("value")

    def click(self, x, y):
        """A real left click: the browser hit-tests the point, as for a user's mouse."""
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent",
                      {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})


def smaller_png(data):
    """chromium's PNG (8-bit RGB or RGBA) re-encoded without row filters at zlib's best level:
    about a fifth smaller for a page of flat colours, which keeps docs/ light."""
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = body
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    if depth != 8 or colour not in (2, 6) or ihdr[12] != 0:
        return data
    bpp = 3 if colour == 2 else 4
    stride, raw = width * bpp, zlib.decompress(idat)
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - bpp] if x >= bpp else 0
            up, upleft = prev[x], prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + left) & 255
            elif kind == 2:
                line[x] = (line[x] + up) & 255
            elif kind == 3:
                line[x] = (line[x] + ((left + up) >> 1)) & 255
            elif kind == 4:
                p = left + up - upleft
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else upleft)) & 255
        rows.append(b"\0" + bytes(line))
        prev = line

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    out = data[:8] + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")
    return out if len(out) < len(data) else data


def find_browser():
    for name in [os.environ.get("DPI_CHROMIUM", "")] + BROWSERS:
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def port_of(flow):
    return f"{flow['proto']}/{flow['dport']}" if flow.get("dport") is not None else flow["proto"]


def outcome_of(f):
    if f["change"] == "same":
        return "same-allow" if f["before"]["verdict"] == "allow" else "same-deny"
    return f["change"]


def side_fields(side):
    """What the panel must show for one side of a flow, from the JSON."""
    want = {"verdict": side["verdict"], "summary": side["summary"], "meaning": side["meaning"]}
    if "indeterminate_reason" in side:
        want["indeterminate_reason"] = side["indeterminate_reason"]
    if side.get("rule"):
        want["rule"] = side["rule"]["text"]
    return want


CELLS_JS = """JSON.stringify(Array.from(document.querySelectorAll('td[data-outcome]')).map(c => ({
  outcome: c.dataset.outcome, src: c.dataset.src, dst: c.dataset.dst, port: c.dataset.port,
  flows: c.dataset.flows.split(' ').map(Number), title: c.title,
  colour: getComputedStyle(c).backgroundColor})))"""
LEGEND_JS = """JSON.stringify(Array.from(document.querySelectorAll('#counts tr[data-outcome]')).map(r => ({
  outcome: r.dataset.outcome, count: Number(r.querySelector('.n').textContent),
  colour: getComputedStyle(r.querySelector('.swatch')).backgroundColor})))"""
# Scrolls cell i into view and returns its box's centre and what the browser finds there.
BOX_JS = """(() => { const c = document.querySelectorAll('td[data-outcome]')[%d];
  c.scrollIntoView({block: 'center', inline: 'center'});
  const r = c.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
  return JSON.stringify({x: x, y: y, hit: document.elementFromPoint(x, y) === c}); })()"""
PANEL_JS = """JSON.stringify({
  selected: Array.from(document.querySelectorAll('td.selected')).map(c => c.dataset.flows),
  flows: Array.from(document.querySelectorAll('#detail article.flow')).map(a => ({
    flow: Number(a.dataset.flow), outcome: a.dataset.outcome,
    sides: Object.fromEntries(Array.from(a.querySelectorAll('[data-side]')).map(s => [s.dataset.side,
      Object.fromEntries(Array.from(s.querySelectorAll('[data-field]')).filter(e =>
        e.dataset.field !== 'rule_location').map(e => [e.dataset.field, e.textContent]))]))}))})"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dpinspect", required=True)
    ap.add_argument("--screenshot", help="save a PNG of the page with a changed cell clicked")
    a = ap.parse_args()
    exe = find_browser()
    if not exe:
        print("SKIP: no chromium (Debian: apt-get install chromium; or set DPI_CHROMIUM)")
        return 77

    def on_alarm(*_):
        raise Timeout(f"the test took longer than {DEADLINE_S} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_alarm)  # ctest's timeout: still close chromium
    signal.alarm(DEADLINE_S)

    failed = []

    start = time.monotonic()

    def check(name, ok, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {name} [{time.monotonic() - start:.1f} s]" + ("" if ok else f": {detail}"))
        if not ok:
            failed.append(name)

    work = tempfile.mkdtemp(prefix="dpi-compare-html-")
    browser = None
    try:
        j = subprocess.run([a.dpinspect] + COMPARE + ["-o", "json"], cwd=TOP, capture_output=True,
                           text=True, timeout=60)
        doc = json.loads(j.stdout)
        flows = doc["flows"]
        page = os.path.join(work, "compare page <&>.html")  # a file name that needs escaping in a URL
        h = subprocess.run([a.dpinspect] + COMPARE + ["-o", "html", "--output-file", page], cwd=TOP,
                           capture_output=True, text=True, timeout=60)
        check("html: the exit code of the json run", h.returncode == j.returncode,
              f"{h.returncode} != {j.returncode}: {h.stderr}")
        check("html: nothing on standard output with --output-file", h.stdout == "", h.stdout[:200])
        check("html: standard error says what was written",
              h.stderr.startswith(f"wrote {page} ({os.path.getsize(page)} bytes, html): {len(flows)} flows"),
              h.stderr)
        kinds = {outcome_of(f) for f in flows}
        check("the example has same and changed flows", "same-allow" in kinds and len(kinds) > 1,
              sorted(kinds))

        width, height = 1200, 660
        browser = Browser(exe, width, height)
        url = "file://" + quote(page)
        browser.open(url, width, height)

        cells = json.loads(browser.eval(CELLS_JS))
        by_key = {}
        for i, f in enumerate(flows):
            by_key.setdefault((port_of(f["flow"]), f["flow"]["src"], f["flow"]["dst"]), []).append(i)
        check("one cell per (port, source, destination) of the JSON", len(cells) == len(by_key),
              f"{len(cells)} cells, {len(by_key)} in the JSON")
        seen = []
        for c in cells:
            key = (c["port"], c["src"], c["dst"])
            want = by_key.get(key)
            name = f"cell {c['port']} {c['src']} -> {c['dst']}"
            if want != c["flows"]:
                check(f"{name}: its flows", False, f"data-flows {c['flows']}, JSON {want}")
                continue
            seen += c["flows"]
            worst = max((outcome_of(flows[i]) for i in want), key=SEVERITY.index)
            if c["outcome"] != worst:
                check(f"{name}: data-outcome", False, f"{c['outcome']}, JSON {worst}")
            for i in want:
                for side in ("before", "after"):
                    if flows[i][side]["summary"] not in c["title"]:
                        check(f"{name}: the title holds the {side} summary", False, c["title"])
        check("every flow of the JSON is in exactly one cell", sorted(seen) == list(range(len(flows))),
              f"{len(seen)} of {len(flows)}")

        legend = {r["outcome"]: r for r in json.loads(browser.eval(LEGEND_JS))}
        check("the legend lists the five outcomes", sorted(legend) == sorted(SEVERITY), sorted(legend))
        colours = {r["colour"] for r in legend.values()}
        check("five distinct colours", len(colours) == 5, legend)
        counts = {k: sum(outcome_of(f) == k for f in flows) for k in SEVERITY}
        check("the legend's counts are the JSON's",
              {k: r["count"] for k, r in legend.items()} == counts, (legend, counts))
        wrong = [(c["port"], c["src"], c["dst"], c["outcome"], c["colour"]) for c in cells
                 if c["outcome"] not in legend or c["colour"] != legend[c["outcome"]]["colour"]]
        check("every cell has its outcome's colour", not wrong, wrong[:5])

        # Click every cell, in a fixed order, and read what the panel shows.
        bad = []
        for n, c in enumerate(cells):
            box = json.loads(browser.eval(BOX_JS % n))
            if not box["hit"]:
                bad.append((n, "the cell is not at its box's centre"))
                continue
            browser.click(box["x"], box["y"])
            panel = json.loads(browser.eval(PANEL_JS))
            if panel["selected"] != [" ".join(map(str, c["flows"]))]:
                bad.append((n, f"selected {panel['selected']}"))
            got = [p["flow"] for p in panel["flows"]]
            if got != c["flows"]:
                bad.append((n, f"panel shows flows {got}, cell has {c['flows']}"))
                continue
            for p in panel["flows"]:
                f = flows[p["flow"]]
                if p["outcome"] != outcome_of(f):
                    bad.append((n, f"flow {p['flow']}: outcome {p['outcome']}"))
                for side in ("before", "after"):
                    want = side_fields(f[side])
                    if p["sides"].get(side) != want:
                        bad.append((n, f"flow {p['flow']} {side}: panel {p['sides'].get(side)}, JSON {want}"))
        check(f"clicking each of the {len(cells)} cells shows its flows' explanations as in the JSON",
              not bad, bad[:3])

        requests = [e["params"]["request"]["url"] for e in browser.events
                    if e.get("method") == "Network.requestWillBeSent"]
        check("the page loads nothing but itself", requests == [url], requests)
        errors = [e["params"] for e in browser.events if e.get("method") == "Runtime.exceptionThrown"]
        check("no script error", not errors, errors[:1])

        if a.screenshot:
            first = next(n for n, c in enumerate(cells) if c["outcome"] != "same-allow")
            browser.eval("window.scrollTo(0, 0)")
            box = json.loads(browser.eval(BOX_JS % first))
            browser.click(box["x"], box["y"])
            browser.eval("window.scrollTo(0, 0); document.querySelector('.matrices').scrollLeft = 0")
            shot = browser.call("Page.captureScreenshot", {"format": "png"})
            with open(a.screenshot, "wb") as out:
                out.write(smaller_png(base64.b64decode(shot["data"])))
            print(f"wrote {a.screenshot}")
    except (Timeout, RuntimeError, OSError, ValueError, KeyError) as e:
        check("the browser test ran to its end", False, f"{type(e).__name__}: {e}")
    finally:
        signal.alarm(0)
        if browser:
            browser.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
