"""Pictures: `netspec graph` (DOT / Mermaid / SVG / PNG from the typed IR) and `netspec plot`
(training curves from real runs).

The structure is checked against the typed IR, not against what the drawing code computed: each
edge's label is the producing value's inferred type, each cluster holds exactly the layers whose
names lie under its block instance (TypedGraph.inside), each `--depth` shows the items
`summarize --depth` lists. The DOT text is read back by a small parser here and, where Graphviz
is installed, by `dot` itself; the curves are compared with each run's metrics.jsonl.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from netspec.compiler import compile_file, compile_text
from netspec.summary import rows, summary_data
from netspec.viz.graph import (
    MERMAID_ID,
    OUTPUT_PREFIX,
    diagram,
    dot_label,
    dot_quote,
    mermaid_text,
    title_lines,
    to_dot,
    to_mermaid,
)

from .conftest import ROOT, SPECS

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
SVG_NS = "{http://www.w3.org/2000/svg}"


def typed_of(path):
    res = compile_file(path)
    assert res.ok, res.diagnostics
    return res.typed


def value_types(typed) -> dict:
    """Every value's inferred type by name: the graph's inputs and each layer's output."""
    types = {i.name: t for i, t in zip(typed.graph.inputs, typed.inputs, strict=True)}
    types.update((la.node.name, la.out_type) for la in typed.layers)
    return types


def ir_edges(typed) -> Counter:
    """(source, consumer, label) for every value a layer reads and every output, from the IR."""
    types = value_types(typed)
    edges = Counter((src, la.node.name, types[src].show()) for la in typed.layers for src in la.node.inputs)
    edges.update((name, OUTPUT_PREFIX + name, types[name].show()) for name in typed.graph.outputs)
    return edges


# ----------------------------------------------------------------------------- a reader for DOT

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<arrow>->)|(?P<sym>[{}\[\]=;,])|(?P<id>[A-Za-z0-9_.#]+))')


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m and m.end() > pos, f"cannot read DOT at {text[pos : pos + 40]!r}"
        out.append(m.group(m.lastgroup))
        pos = m.end()
    return out


def unquote(token: str) -> str:
    """A DOT string's value as dot's lexer reads it: the quotes off and `\\"` undone, every other
    backslash kept (in a label, label_lines reads those)."""
    return token[1:-1].replace('\\"', '"') if token.startswith('"') else token


def label_lines(value: str) -> list[str]:
    """A label's lines: `\\n`, `\\l` and `\\r` end a line, `\\\\` is a backslash, `&amp;` is `&`."""
    lines, cur, i = [], "", 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt in "nlr":
                lines.append(cur)
                cur = ""
            else:
                cur += nxt
            i += 2
            continue
        cur += c
        i += 1
    if cur or not lines:
        lines.append(cur)
    return [html.unescape(ln) for ln in lines]  # as Graphviz, which decodes entities in labels


def read_dot(text: str) -> dict:
    """nodes: id -> (label lines, enclosing cluster ids outermost first); edges: Counter of
    (src, dst, label); clusters: id -> label lines. Only the statements to_dot writes."""
    toks = _tokens(text)
    assert toks[:2] == ["digraph", toks[1]] and toks[2] == "{" and toks[-1] == "}"
    i, stack = 3, []
    nodes, edges, clusters = {}, Counter(), {}

    def attrs(i):
        out = {}
        if toks[i] != "[":
            return out, i
        i += 1
        while toks[i] != "]":
            key, eq, val = toks[i], toks[i + 1], toks[i + 2]
            assert eq == "=", toks[i : i + 3]
            out[key] = unquote(val)
            i += 3
            if toks[i] == ",":
                i += 1
        return out, i + 1

    while i < len(toks) - 1:
        t = toks[i]
        if t == "subgraph":
            name = unquote(toks[i + 1])
            assert toks[i + 2] == "{"
            stack.append(name)
            clusters[name] = None
            i += 3
        elif t == "}":
            stack.pop()
            i += 1
        elif t in ("graph", "node", "edge"):
            a, i = attrs(i + 1)
            if t == "graph" and stack:
                clusters[stack[-1]] = label_lines(a["label"])
            assert toks[i] == ";"
            i += 1
        elif toks[i + 1] == "->":
            a, j = attrs(i + 3)
            edges[(unquote(t), unquote(toks[i + 2]), label_lines(a["label"])[0].strip())] += 1
            assert toks[j] == ";"
            i = j + 1
        else:
            a, j = attrs(i + 1)
            nid = unquote(t)
            assert nid not in nodes, f"node {nid!r} declared twice"
            nodes[nid] = (label_lines(a["label"]), tuple(stack))
            assert toks[j] == ";"
            i = j + 1
    assert not stack
    return {"nodes": nodes, "edges": edges, "clusters": clusters}


def dot_svg(text: str) -> ET.Element:
    res = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    return ET.fromstring(res.stdout)  # well-formed XML or this raises


def svg_titles(root: ET.Element, cls: str) -> list[str]:
    return [g.find(SVG_NS + "title").text for g in root.iter(SVG_NS + "g") if g.get("class") == cls]


# ----------------------------------------------------------------------------- structure, every zoo spec


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_edge_node_and_cluster_of_the_ir_is_drawn_once(path):
    typed = typed_of(path)
    d = diagram(typed)
    got = read_dot(to_dot(d, title_lines(typed)))
    layer_names = [la.node.name for la in typed.layers]
    input_names = [i.name for i in typed.graph.inputs]
    want_ids = Counter(input_names + layer_names + [OUTPUT_PREFIX + o for o in typed.graph.outputs])
    assert Counter(n.id for n in d.nodes) == want_ids
    assert set(got["nodes"]) == set(want_ids)  # read_dot refuses a node declared twice
    assert Counter((e.src, e.dst, e.shape) for e in d.edges) == ir_edges(typed)
    assert got["edges"] == ir_edges(typed)
    params = {la.node.name: la.params for la in typed.layers}
    paths = [inst.path for inst in typed.graph.instances]
    for name in layer_names:
        lines, _ = got["nodes"][name]
        holder = max((p for p in paths if name.startswith(p + ".")), key=len, default="")
        assert lines[0] == (name[len(holder) + 1 :] if holder else name)  # its name inside its block
        assert typed.graph.node(name).op in lines[1]
        assert (f"{params[name]:,} params" in lines) == (params[name] > 0)
    # every block instance is one cluster, holding exactly its layers (nested ones included)
    assert sorted(got["clusters"]) == sorted("cluster_" + p for p in paths)
    for p in paths:
        inside = {n for n, (_, around) in got["nodes"].items() if "cluster_" + p in around}
        assert inside == {la.node.name for la in typed.inside(p)}
        label = got["clusters"]["cluster_" + p]
        assert label[0].startswith(f"{p.rsplit('.', 1)[-1]}: ")
        assert f"{sum(la.params for la in typed.inside(p)):,} params" in label
    if HAS_DOT:  # Graphviz reads the same ids, edges and clusters
        root = dot_svg(to_dot(d, title_lines(typed)))
        assert set(svg_titles(root, "node")) == set(want_ids)
        assert Counter(svg_titles(root, "edge")) == Counter(f"{s}->{t}" for s, t, _ in ir_edges(typed).elements())
        assert sorted(svg_titles(root, "cluster")) == sorted(got["clusters"])


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_depth_draws_what_summarize_lists(depth):
    """A block at the last level is one node for all its layers; the edges between the drawn
    items are the IR's, once per value that crosses into a collapsed block."""
    typed = typed_of(ROOT / "specs" / "resnet18.yaml")
    d = diagram(typed, depth)
    got = read_dot(to_dot(d))
    listed = {r["name"] for r in rows(summary_data(typed), depth)}
    drawn = {n.id for n in d.nodes if n.kind in ("layer", "block")} | {c.path for c in d.clusters}
    assert drawn == listed
    shown = {n.id for n in d.nodes}
    blocks = {n.id for n in d.nodes if n.kind == "block"}

    def node_of(value):
        return next((b for b in blocks if value.startswith(b + ".")), value)

    want = Counter()
    for src, dst, label in ir_edges(typed):
        a, b = node_of(src), node_of(dst)
        if a != b and not (b in blocks and (a, b, label) in want):
            want[(a, b, label)] += 1
    assert got["edges"] == want
    assert all(s in shown and t in shown for s, t, _ in want)
    for n in d.nodes:
        if n.kind == "block":
            assert f"{sum(la.params for la in typed.inside(n.id)):,} params" in n.lines
            assert n.cluster == (n.id.rpartition(".")[0] or None)


def test_merges_and_several_inputs_and_outputs():
    text = (
        "netspec: 1\nname: two_heads\ninputs:\n  image: {shape: [3, 8, 8]}\n  meta: {shape: [5]}\n"
        "layers:\n"
        "  - conv2d: {name: conv, out_channels: 4, kernel_size: 3}\n"
        "  - global_avgpool: {name: pooled}\n"
        "  - linear: {name: embed, from: meta, out_features: 4}\n"
        "  - concat: {name: both, from: [pooled, embed]}\n"
        "  - linear: {name: logits, out_features: 2}\n"
        "  - add: {name: twice, from: [embed, embed]}\n"
        "  - multiply: {name: gated, from: [pooled, twice]}\n"
        "outputs: [gated, logits, embed]\n"
    )
    res = compile_text(text)
    assert res.ok, res.diagnostics
    d = diagram(res.typed)
    got = read_dot(to_dot(d))
    assert got["edges"] == ir_edges(res.typed)
    assert got["edges"][("embed", "twice", "(B, 4)")] == 2  # the same value twice: two edges
    kinds = {n.id: n.kind for n in d.nodes}
    assert [k for k in kinds if kinds[k] == "input"] == ["image", "meta"]
    assert [k for k in kinds if kinds[k] == "output"] == [OUTPUT_PREFIX + o for o in ("gated", "logits", "embed")]
    assert got["nodes"]["output:embed"][0] == ["output embed", "(B, 4)"]
    if HAS_DOT:
        assert len(svg_titles(dot_svg(to_dot(d)), "node")) == len(d.nodes)


# ----------------------------------------------------------------------------- escaping

HOSTILE = ['a"b', "back\\slash", "new\nline", "\\n not a break", "<b>&amp;</b>", "#quot; `x` {y|z}", "(T-4)//2+1"]


@pytest.mark.parametrize("text", HOSTILE)
def test_dot_quote_round_trips_through_graphviz(text):
    dot = f"digraph g {{ {dot_quote(text)} [label={dot_label([text])}]; }}"
    got = read_dot(dot)
    flat = text.replace("\n", " ")  # a label line never holds a line break
    ((lines, _),) = got["nodes"].values()  # one node statement, its quotes intact
    assert lines == [flat]
    if HAS_DOT:
        root = dot_svg(dot)
        assert len(svg_titles(root, "node")) == 1
        texts = ["".join(t.itertext()) for t in root.iter(SVG_NS + "text")]
        assert texts == [flat]


@pytest.mark.parametrize("text", HOSTILE)
def test_mermaid_text_leaves_no_character_that_ends_a_label(text):
    out = mermaid_text(text)
    assert not set(out) & set('"<>`\n')
    # Mermaid decodes `#name;` / `#NN;` entities: undoing them gives the text back
    entities = {"quot": '"', "amp": "&", "lt": "<", "gt": ">"}
    back = re.sub(r"#(\w+);", lambda m: entities.get(m.group(1)) or chr(int(m.group(1))), out)
    assert back == text.replace("\n", " ")


def test_symbolic_shapes_are_escaped_in_both_formats():
    text = (
        "netspec: 1\nname: sym\ninputs:\n  x: {shape: [2, T]}\ndims: {T: 64}\nlayers:\n"
        "  - conv1d: {out_channels: 4, kernel_size: 5, stride: 2}\n"
        "  - maxpool1d: {kernel_size: 3, stride: 2, ceil_mode: true}\n"
        "  - global_maxpool\n"
    )
    res = compile_text(text)
    assert res.ok, res.diagnostics
    shapes = [la.out_type.show() for la in res.typed.layers]
    assert any("(" in s[1:] and "/" in s for s in shapes), shapes  # compound expressions to escape
    d = diagram(res.typed)
    assert read_dot(to_dot(d))["edges"] == ir_edges(res.typed)
    mmd = to_mermaid(d)
    for s in shapes:
        assert f'-->|"{mermaid_text(s)}"|' in mmd
    if HAS_DOT:
        root = dot_svg(to_dot(d))
        texts = {"".join(t.itertext()).strip() for t in root.iter(SVG_NS + "text")}
        assert set(shapes) <= texts


# ----------------------------------------------------------------------------- Mermaid

_M_NODE = re.compile(r'^(?P<id>[^\s\[(]+)(?P<open>\(\[|\[\[|\[)"(?P<label>[^"]*)"(?P<close>\]\)|\]\]|\])$')
_M_EDGE = re.compile(r'^(?P<a>\S+) -->\|"(?P<label>[^"]*)"\| (?P<b>\S+)$')
_M_SUB = re.compile(r'^subgraph (?P<id>\S+)\["(?P<label>[^"]*)"\]$')
_PAIRS = {"([": "])", "[[": "]]", "[": "]"}
_KEYWORDS = {"end", "graph", "subgraph", "flowchart", "style", "class", "classDef", "click", "linkStyle"}


@pytest.mark.parametrize("depth", [None, 1])
@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_mermaid_syntax(path, depth):
    typed = typed_of(path)
    d = diagram(typed, depth)
    lines = to_mermaid(d, title_lines(typed)).splitlines()
    assert lines[:3] == ["---", f'title: "{typed.graph.name}"', "---"] and lines[3] == "flowchart TB"
    declared, edges, open_subgraphs = set(), [], 0
    for raw in lines[4:]:
        line = raw.strip()
        if m := _M_SUB.match(line):
            open_subgraphs += 1
            declared.add(m["id"])
        elif line == "end":
            open_subgraphs -= 1
            assert open_subgraphs >= 0
        elif m := _M_EDGE.match(line):
            edges.append((m["a"], m["b"], m["label"]))
        elif m := _M_NODE.match(line):
            assert _PAIRS[m["open"]] == m["close"]
            assert m["id"] not in declared
            declared.add(m["id"])
        elif line.startswith(("classDef c_", "class ")):
            continue
        else:
            raise AssertionError(f"unexpected Mermaid line {raw!r}")
    assert open_subgraphs == 0
    assert all(MERMAID_ID.match(i) and i not in _KEYWORDS for i in declared)
    assert len(edges) == len(d.edges)
    assert all(a in declared and b in declared for a, b, _ in edges)
    assert Counter(label for _, _, label in edges) == Counter(mermaid_text(e.shape) for e in d.edges)
    assert len(declared) == len(d.nodes) + len(d.clusters)


# ----------------------------------------------------------------------------- the command


def test_graph_writes_each_format(tmp_path, cli):
    spec = ROOT / "specs" / "lstm_fcn.yaml"
    typed = typed_of(spec)
    d = diagram(typed)
    code, out, err = cli("graph", spec, "-o", tmp_path / "net.dot")
    assert code == 0, err
    assert (tmp_path / "net.dot").read_text() == to_dot(d, title_lines(typed))
    assert f"{len(d.nodes)} nodes, {len(d.edges)} edges, {len(d.clusters)} clusters" in out
    code, out, err = cli("graph", spec, "-o", tmp_path / "net.txt", "--format", "mmd", "--direction", "LR")
    assert code == 0, err
    assert (tmp_path / "net.txt").read_text() == to_mermaid(d, title_lines(typed), "LR")
    code, out, err = cli("graph", spec, "-d", "1")  # DOT on stdout
    assert code == 0, err
    assert out == to_dot(diagram(typed, 1), title_lines(typed))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp file behind


@needs_dot
def test_graph_renders_svg_and_png(tmp_path, cli):
    spec = ROOT / "specs" / "resnet_ts.yaml"
    code, _, err = cli("graph", spec, "-o", tmp_path / "net.svg", "--dim", "T=300")
    assert code == 0, err
    root = ET.parse(tmp_path / "net.svg").getroot()
    titles = set(svg_titles(root, "node"))
    assert {la.node.name for la in typed_of(spec).layers} <= titles
    assert "counted with T = 300" in "".join(root.itertext())
    code, _, err = cli("graph", spec, "-o", tmp_path / "net.png", "-d", "1")
    assert code == 0, err
    assert (tmp_path / "net.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_dot_says_how_to_get_it(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    spec = ROOT / "specs" / "lenet5.yaml"
    code, _, err = cli("graph", spec, "-o", tmp_path / "net.svg")
    assert code == 1
    assert "`dot`" in err and "apt install graphviz" in err and "brew install graphviz" in err
    assert "net.dot" in err and "net.mmd" in err
    assert not (tmp_path / "net.svg").exists()
    code, _, err = cli("graph", spec, "-o", tmp_path / "net.mmd")  # text needs no Graphviz
    assert code == 0, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "net.txt"], "cannot tell the format of 'net.txt'"),
        (["-o", "net.svg", "--format", "png"], "--format png but -o net.svg says svg"),
        (["--format", "png"], "PNG is binary"),
    ],
)
def test_graph_format_mistakes(tmp_path, cli, args, message):
    code, _, err = cli("graph", ROOT / "specs" / "lenet5.yaml", *[str(tmp_path / a) if "." in a else a for a in args])
    assert code == 1
    assert message.replace("net.", str(tmp_path / "net.")) in err


def test_graph_of_a_wrong_spec_reports_the_diagnostics(tmp_path, cli):
    bad = tmp_path / "bad.yaml"
    bad.write_text("netspec: 1\nname: bad\ninputs:\n  x: {shape: [4]}\nlayers:\n  - conv2d: {out_channels: 2}\n")
    code, _, err = cli("graph", bad, "-o", tmp_path / "bad.dot")
    assert code == 1 and "error" in err
    assert not (tmp_path / "bad.dot").exists()


@pytest.mark.parametrize("ext", ["dot", "mmd", "svg"])
def test_graph_imports_no_torch(tmp_path, ext):
    if ext == "svg" and not HAS_DOT:
        pytest.skip("Graphviz's dot is not installed")
    out = tmp_path / f"net.{ext}"
    code = (
        "import sys; from netspec.cli import main;"
        f"assert main(['graph', 'specs/resnet18.yaml', '-o', {str(out)!r}]) == 0;"
        "loaded = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')];"
        "assert not loaded, loaded[:5]"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 0


# ----------------------------------------------------------------------------- plot

RUN = """netspec: 1
name: tiny_plot
inputs:
  x: {{shape: [6]}}
layers:
  - linear: 8
  - relu
  - linear: 3
train:
  data: {{source: synthetic, samples: 48, val_fraction: 0.25, test_fraction: 0.25}}
  batch_size: 8
  epochs: 2
  optimizer: {{name: adam, lr: {lr}}}
  seed: 1
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two real two-epoch runs that differ in the learning rate."""
    from netspec.cli import main

    base = tmp_path_factory.mktemp("plot")
    dirs = []
    for lr in ("0.01", "0.001"):
        spec = base / f"lr{lr}.yaml"
        spec.write_text(RUN.format(lr=lr))
        run_dir = base / f"lr{lr}"
        assert main(["train", str(spec), "-o", str(run_dir), "-q"]) == 0
        dirs.append(run_dir)
    return dirs


def test_plot_figure_has_one_axes_per_quantity_with_the_runs_curves(runs):
    from netspec.viz.plot import figure, load_runs

    loaded = load_runs([str(d) for d in runs])
    assert [r.name for r in loaded] == [d.name for d in runs]
    records = [[json.loads(ln) for ln in (d / "metrics.jsonl").read_text().splitlines()] for d in runs]
    assert all(len(recs) == 2 and {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(recs[0]) for recs in records)
    for lr, titles in ((False, ["loss", "accuracy"]), (True, ["loss", "accuracy", "learning rate"])):
        fig = figure(loaded, lr=lr)
        assert [ax.get_title() for ax in fig.axes] == titles
    for ax, key in zip(fig.axes, ["loss", "accuracy", "lr"], strict=True):
        lines = ax.get_lines()
        want = [(recs, k) for recs in records for k in ([key] if key == "lr" else [key, "val_" + key])]
        assert len(lines) == len(want)
        for line, (recs, k) in zip(lines, want, strict=True):
            assert list(line.get_xdata()) == [r["epoch"] for r in recs]
            assert list(line.get_ydata()) == [r[k] for r in recs]
            assert line.get_linestyle() == ("--" if k.startswith("val_") else "-")
        colors = [line.get_color() for line in lines]
        assert len(set(colors)) == len(runs)  # a colour per run, shared by its train and val lines
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == [d.name for d in runs] + ["train", "validation"]


def test_plot_command_writes_png_and_svg(runs, tmp_path, cli):
    code, out, err = cli("plot", *runs, "-o", tmp_path / "curves.png")
    assert code == 0, err
    assert "2 runs, 2 plots" in out
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, err = cli("plot", runs[0], "-o", tmp_path / "curves.svg", "--lr")
    assert code == 0, err
    assert "1 run, 3 plots" in out
    ET.parse(tmp_path / "curves.svg")


def test_plot_keeps_the_last_record_of_an_epoch_and_skips_a_torn_line(runs, tmp_path):
    from netspec.viz.plot import load_runs

    run = tmp_path / "resumed"
    run.mkdir()
    lines = (runs[0] / "metrics.jsonl").read_text().splitlines()
    again = {**json.loads(lines[1]), "loss": 0.125}
    (run / "metrics.jsonl").write_text("\n".join([*lines, json.dumps(again), '{"epoch": 3, "lo']) + "\n")
    (loaded,) = load_runs([str(run)])
    assert [r["epoch"] for r in loaded.records] == [1, 2]
    assert loaded.records[1]["loss"] == 0.125


def test_plot_mistakes(runs, tmp_path, cli, monkeypatch):
    code, _, err = cli("plot", tmp_path / "nope", "-o", tmp_path / "c.png")
    assert code == 1 and "not a directory" in err
    code, _, err = cli("plot", tmp_path, "-o", tmp_path / "c.png")
    assert code == 1 and "no metrics.jsonl" in err
    code, _, err = cli("plot", runs[0], "-o", tmp_path / "c.jpg")
    assert code == 1 and ".png, .svg, .pdf" in err
    same = tmp_path / "a" / runs[0].name
    shutil.copytree(runs[0], same)
    from netspec.viz.plot import load_runs

    assert [r.name for r in load_runs([str(runs[0]), str(same)])] == [str(runs[0]), str(same)]
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if matplotlib were not installed
    code, _, err = cli("plot", runs[0], "-o", tmp_path / "c.png")
    assert code == 1 and "pip install 'netspec[plot]'" in err
    assert not (tmp_path / "c.png").exists()
