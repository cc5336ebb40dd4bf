"""report_check.py: checks of a `bottleneck-classify report` page, for the
shell tests (report_html.sh, report_cases.sh). Debian python3 with numpy,
scikit-learn and PIL.

  report_check.py page HTML SHOW_JSON DB RUN PLOTS_HTML
      the numbers against `show --json`, the curves against scikit-learn on the
      run's stored predictions, the page self-contained; writes PLOTS_HTML
      (every figure of the page at a known position) and PLOTS_HTML.json
      (those positions)
  report_check.py pixels PAGE_PNG PLOTS_PNG PLOTS_HTML.json
      the screenshots: the page is not blank, every figure has drawn content
  report_check.py count HTML KIND   prints how many figures / series / ...

Every failed check prints one "FAIL: ..." line; the exit status is the
number of failures (0: all passed).
"""
import html.parser
import json
import re
import sqlite3
import sys

FAILS = 0


def fail(msg):
    global FAILS
    FAILS += 1
    print("FAIL: " + msg)


def cl_num(v):
    """classify/format.c cl_num: how show and the report print a metric."""
    if v is None:
        return "-"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return "%.2g" % v
    return "%.4f" % v


class Page(html.parser.HTMLParser):
    """The elements the checks need, with their attributes and text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tds, self.svgs, self.series, self.cells, self.cards = [], [], [], [], []
        self.imgs, self.scripts, self.links, self.missing = [], 0, 0, []
        self.stack, self.text_target, self.svg_depth = [], None, 0
        self.raw_svgs, self.in_card = [], None

    def handle_starttag(self, tag, a):
        a = dict(a)
        self.stack.append(tag)
        if tag == "td" and "data-metric" in a:
            a["text"] = ""
            self.tds.append(a)
            self.text_target = a
        if tag == "svg" and a.get("class") == "plot":
            self.svgs.append(a)
        if tag == "g" and a.get("class") == "series":
            a["plot"] = self.svgs[-1].get("data-plot") if self.svgs else None
            self.series.append(a)
        if tag == "rect" and a.get("class") == "cell":
            a["plot"] = self.svgs[-1].get("data-plot")
            self.cells.append(a)
        if tag == "div" and a.get("class", "").startswith("card"):
            self.in_card = {"text": "", "imgs": 0, "missing": []}
            self.cards.append(self.in_card)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
            if self.in_card is not None:
                self.in_card["imgs"] += 1
        if tag == "div" and a.get("class") == "missing":
            self.missing.append("")
            if self.in_card is not None:
                self.in_card["missing"].append("")
        if tag == "script":
            self.scripts += 1
        if tag == "link":
            self.links += 1

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()
        if tag == "td":
            self.text_target = None

    def handle_data(self, d):
        if self.text_target is not None:
            self.text_target["text"] += d
        if self.in_card is not None:
            self.in_card["text"] += d
            if self.in_card["missing"] and self.stack and self.stack[-1] in ("div", "br"):
                self.in_card["missing"][-1] += d


def nums(s):
    return [float(v) for v in s.split()] if s else []


def check_page(path, show_path, db, run, plots_path):
    import numpy as np
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import average_precision_score, roc_auc_score

    text = open(path, encoding="utf-8").read()
    show = json.load(open(show_path))
    p = Page()
    p.feed(text)

    # self-contained: no script, no stylesheet link, no URL but data: and the SVG namespace
    if p.scripts or p.links:
        fail("the page has %d <script> and %d <link> elements" % (p.scripts, p.links))
    urls = [u for u in re.findall(r"https?://[^\"' )]+", text) if u != "http://www.w3.org/2000/svg"]
    if urls:
        fail("the page refers to %s" % urls[:3])
    bad_src = [s[:40] for s in p.imgs if not s.startswith("data:image/jpeg;base64,")]
    if bad_src:
        fail("images not embedded: %s" % bad_src)

    # every number equals show's, as show prints it
    run = int(run)
    metrics = show["metrics"]
    seen = 0
    for td in p.tds:
        if int(td.get("data-run", -1)) != run:
            continue
        split, name = td["data-split"], td["data-metric"]
        m = metrics.get(split)
        if m is None:
            fail("report has split %s that show does not" % split)
            continue
        if "data-class" in td:
            cls = show["classes"][int(td["data-class"])]
            want = cl_num(m["per_class"][cls][name])
        elif name == "n":
            want = str(m["n"])
        else:
            want = cl_num(m[name])
        seen += 1
        if td["text"].strip() != want:
            fail("%s %s: report %r, show %r" % (split, name, td["text"], want))
    splits_shown = {td["data-split"] for td in p.tds if int(td.get("data-run", -1)) == run}
    if splits_shown != set(metrics):
        fail("splits in the report %s, in show %s" % (sorted(splits_shown), sorted(metrics)))
    if seen < 7 * len(metrics):
        fail("only %d metric cells for %d splits" % (seen, len(metrics)))
    # confusion cells = show's confusion matrix (of the evaluated split)
    cells = [c for c in p.cells]
    if not cells:
        fail("no confusion matrix cells")
    k = len(show["classes"])
    for split, m in metrics.items():
        if "confusion" not in m:
            continue
        got = {(c["data-actual"], c["data-predicted"]): int(c["data-count"]) for c in cells[: k * k]}
        want = {(a, b): m["confusion"][i][j] for i, a in enumerate(show["classes"])
                for j, b in enumerate(show["classes"])}
        if got == want:
            break
    else:
        fail("confusion cells %s match no split of show" % [c["data-count"] for c in cells[: k * k]])

    # curves against scikit-learn on the stored predictions of the run
    con = sqlite3.connect(db)
    rows = con.execute("SELECT label, split, probabilities FROM run_predictions WHERE run = ?",
                       (run,)).fetchall()
    classes = show["classes"]
    by_split = {}
    for label, split, blob in rows:
        by_split.setdefault(split, []).append((classes.index(label), np.frombuffer(blob, "<f4")))
    checked = 0
    for s in p.series:
        name, plot = s.get("data-name", ""), s.get("plot") or ""
        split = name.split(",")[0]
        if split not in by_split or k != 2:
            continue
        y = np.array([r[0] for r in by_split[split]])
        prob = np.array([r[1][1] for r in by_split[split]], dtype=np.float64)
        x, v = nums(s.get("data-x")), nums(s.get("data-y"))
        if plot.startswith("roc"):
            area = float(np.trapz(v, x))  # sklearn.metrics.auc: trapezoids
            shown = float(name.rsplit("AUC ", 1)[1])
            stored = metrics[split]["roc_auc"]
            if abs(area - stored) > 1e-6:
                fail("%s: AUC from the plotted points %.9f, stored %.9f" % (name, area, stored))
            if abs(area - roc_auc_score(y, prob)) > 1e-4:
                fail("%s: AUC from the points %.9f, sklearn %.9f" % (name, area, roc_auc_score(y, prob)))
            if "%.4f" % area != "%.4f" % shown:
                fail("%s: legend AUC %.4f, points %.4f" % (name, shown, area))
            if x[0] != 0 or v[0] != 0 or x[-1] != 1 or v[-1] != 1:
                fail("%s: ROC does not run from (0,0) to (1,1)" % name)
            checked += 1
        elif plot.startswith("pr"):
            ap = -float(np.sum(np.diff(x) * np.array(v)[:-1]))
            want = average_precision_score(y, prob)
            if abs(ap - want) > 1e-4:
                fail("%s: AP from the points %.9f, sklearn %.9f" % (name, ap, want))
            if "%.4f" % ap != name.rsplit("AP ", 1)[1]:
                fail("%s: legend AP differs from the points' %.4f" % (name, ap))
            checked += 1
        elif plot.startswith("calibration"):
            pt, pp = calibration_curve(y, prob, n_bins=10)
            if len(pt) != len(v) or np.abs(np.array(x) - pp).max() > 1e-4 or np.abs(np.array(v) - pt).max() > 1e-6:
                fail("%s: reliability points %s/%s, sklearn %s/%s" % (name, x, v, list(pp), list(pt)))
            checked += 1
    if k == 2 and checked < 3:
        fail("only %d curves could be checked against scikit-learn (predictions stored?)" % checked)

    # histograms: every image of the evaluated split counted once per true class
    for s in p.series:
        if (s.get("plot") or "").startswith("histogram"):
            n = int(re.search(r"\((\d+)\)$", s["data-name"]).group(1))
            if sum(nums(s["data-y"])) != n:
                fail("histogram %s holds %g images" % (s["data-name"], sum(nums(s["data-y"]))))

    # the embedding map marks as many mistakes as the confusion matrix has
    off = sum(int(c["data-count"]) for c in cells[: k * k] if c["data-actual"] != c["data-predicted"])
    total = sum(int(c["data-count"]) for c in cells[: k * k])
    emb = [s for s in p.series if (s.get("plot") or "").startswith("embedding")]
    marked = [int(s["data-n"]) for s in emb if s["data-name"].startswith("mistake")]
    if total <= 3000 and marked != [off]:
        fail("embedding map marks %s mistakes, the confusion matrix has %d" % (marked, off))
    if total <= 3000 and sum(int(s["data-n"]) for s in emb if not s["data-name"].startswith("mistake")) != total:
        fail("embedding map does not show every image")
    if len(p.cards) != min(off, 24):
        fail("%d gallery cards for %d mistakes" % (len(p.cards), off))

    # the plots page: every figure of the report at a known place
    figs = re.findall(r"<svg class=\"plot\".*?</svg>", text, flags=re.S)
    layout, out = [], ["<!DOCTYPE html><html><head><meta charset=utf-8><style>body{margin:0;"
                       "background:#fff}div{position:absolute}</style></head><body>"]
    for i, fig in enumerate(figs):
        w, h = (int(float(v)) for v in re.search(r'width="([\d.]+)" height="([\d.]+)"', fig).groups())
        x, y = (i % 2) * 620, (i // 2) * 620
        out.append('<div style="left:%dpx;top:%dpx">%s</div>' % (x, y, fig))
        plot = re.search(r'data-plot="([^"]*)"', fig).group(1)
        layout.append({"plot": plot, "x": x, "y": y, "w": w, "h": h})
    out.append("</body></html>")
    open(plots_path, "w").write("\n".join(out))
    json.dump({"figures": layout, "height": ((len(figs) + 1) // 2) * 620}, open(plots_path + ".json", "w"))
    print("page: %d metric cells, %d curves checked against scikit-learn, %d figures, %d cards"
          % (seen, checked, len(figs), len(p.cards)))


def check_pixels(page_png, plots_png, layout_path):
    from PIL import Image

    page = Image.open(page_png).convert("RGB")
    w, h = page.size
    small = page.resize((w // 4, h // 4))
    px = list(small.getdata())
    nonwhite = sum(1 for r, g, b in px if min(r, g, b) < 235) / len(px)
    colours = len(set(px))
    if nonwhite < 0.05 or colours < 200:
        fail("the page screenshot looks blank: %.1f%% non-white, %d colours" % (100 * nonwhite, colours))
    layout = json.load(open(layout_path))
    plots = Image.open(plots_png).convert("RGB")
    for f in layout["figures"]:
        box = plots.crop((f["x"], f["y"], f["x"] + f["w"], f["y"] + f["h"]))
        data = list(box.getdata())
        # drawn content: pixels in the palette's colours, not only the black,
        # grey and white of the frame, ticks and text
        coloured = sum(1 for r, g, b in data if max(r, g, b) - min(r, g, b) > 60)
        dark = sum(1 for r, g, b in data if max(r, g, b) < 100)
        if coloured < 150 or dark < 200:
            fail("figure %s has no drawn content: %d coloured, %d dark pixels" % (f["plot"], coloured, dark))
    print("pixels: page %.1f%% non-white, %d colours; %d figures drawn"
          % (100 * nonwhite, colours, len(layout["figures"])))


def count(path, kind):
    p = Page()
    p.feed(open(path, encoding="utf-8").read())
    if kind == "figures":
        print(len(p.svgs))
    elif kind.startswith("series:"):
        print(sum(1 for s in p.series if (s.get("plot") or "").startswith(kind[7:])))
    elif kind == "cards":
        print(len(p.cards))
    elif kind == "placeholders":
        print(len(p.missing))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "page":
        check_page(*sys.argv[2:7])
    elif cmd == "pixels":
        check_pixels(*sys.argv[2:5])
    elif cmd == "count":
        count(*sys.argv[2:4])
    sys.exit(min(FAILS, 100))
