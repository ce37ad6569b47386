"""The editor catches what `netspec check` catches: the published JSON Schema in a real editor's
language server (yaml-language-server, driven over LSP on stdio as VS Code drives it) and in a
second validator (jsonschema, draft 2020-12).

- No false positive: 0 diagnostics on every shipped spec, every docs example and every
  `netspec init` output (whose `$schema` modeline must resolve offline).
- A corpus of mistakes: each one the editor flags at the line `netspec check` reports.
- Completion and hover: a layer's required keys inserted, every enum value with its meaning, each
  layer's docs, defaults.

The server is installed with npm, pinned, into a cache folder (once); the module skips, saying
why, without node and npm or when the install fails (offline). One server serves the module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from netspec.compiler import compile_text
from netspec.docs import example_spec
from netspec.errors import SpecError
from netspec.ops import all_ops
from netspec.spec.loader import load_text
from netspec.spec.schema import published_schema
from netspec.spec.validate import validate

from .conftest import ROOT

VERSION = "1.25.0"  # yaml-language-server; 2.x needs node >= 22
SCHEMA = ROOT / "schemas" / "netspec.schema.json"
# Documents the tests make are given the schema by name, as `yaml.schemas` in an editor's settings
# does (a modeline must be among the first comments, which would move every line down).
TEST_DOC = "netspec-lsp-test-{}.yaml"
HEAD = "netspec: 1\ninputs:\n  x: {shape: [3, 8, 8]}\n"


# --- the server ------------------------------------------------------------------------------


def _install() -> Path:
    """The server's entry point, installed by npm into the cache on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        pytest.skip("yaml-language-server tests need node and npm (not found on PATH)")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "netspec-tests"
    home = cache / f"yaml-language-server-{VERSION}"
    entry = home / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
    if entry.is_file():
        return entry
    staging = cache / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    cmd = [
        npm,
        "install",
        "--prefix",
        str(staging),
        "--no-audit",
        "--no-fund",
        "--omit=dev",
        "--fetch-retries=1",
        "--fetch-timeout=20000",
    ]
    try:
        done = subprocess.run([*cmd, f"yaml-language-server@{VERSION}"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        done = None
    if done is None or done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        said = [] if done is None else [line for line in done.stderr.splitlines() if "error" in line]
        why = "timed out" if done is None else " / ".join(said[:2]) or f"exit code {done.returncode}"
        pytest.skip(f"could not install yaml-language-server@{VERSION} with npm (offline?): {why}")
    try:
        staging.rename(home)  # whole or not at all: a concurrent run may have won the race
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return entry


class Server:
    """A language server over stdio: JSON-RPC requests, and the diagnostics it publishes."""

    def __init__(self, cmd: list[str]):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.next_id = 0
        self.answers: dict[int, dict] = {}
        self.diagnostics: dict[str, list[dict]] = {}
        self.changed = threading.Condition()
        self.opened = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _send(self, message: dict) -> None:
        assert self.proc.stdin is not None
        body = json.dumps(message).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while line := out.readline():  # headers, up to an empty line
                if not line.strip():
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:  # the server exited
                return
            message = json.loads(out.read(length))
            if "method" in message and "id" in message:  # the server asks: configuration, capabilities
                self._send({"jsonrpc": "2.0", "id": message["id"], "result": self._answer(message)})
            elif message.get("method") == "textDocument/publishDiagnostics":
                with self.changed:
                    self.diagnostics[message["params"]["uri"]] = message["params"]["diagnostics"]
                    self.changed.notify_all()
            elif "id" in message:
                with self.changed:
                    self.answers[message["id"]] = message
                    self.changed.notify_all()

    @staticmethod
    def _answer(message: dict) -> Any:
        if message["method"] == "workspace/configuration":
            return [SETTINGS if item.get("section") == "yaml" else None for item in message["params"]["items"]]
        return None

    def request(self, method: str, params: dict) -> Any:
        self.next_id += 1
        key = self.next_id
        self._send({"jsonrpc": "2.0", "id": key, "method": method, "params": params})
        with self.changed:
            assert self.changed.wait_for(lambda: key in self.answers, 30), f"no answer to {method}"
        answer = self.answers.pop(key)
        assert "error" not in answer, answer
        return answer["result"]

    def notify(self, method: str, params: dict) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def open(self, text: str, uri: str | None = None) -> str:
        self.opened += 1
        uri = uri or f"file:///tmp/{TEST_DOC.format(self.opened)}"
        doc = {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": doc})
        return uri

    def diagnose(self, texts: list[str], uris: list[str] | None = None) -> list[list[dict]]:
        """The diagnostics of each text, opened all at once (the server validates on open)."""
        opened = [self.open(t, u) for t, u in zip(texts, uris or [None] * len(texts), strict=True)]
        with self.changed:
            assert self.changed.wait_for(lambda: all(u in self.diagnostics for u in opened), 60), "no diagnostics"
        return [self.diagnostics.pop(u) for u in opened]

    def at(self, method: str, text: str, line: int, col: int) -> Any:
        """`method` (completion, hover) at 0-based (line, col) of `text`, once it is validated."""
        self.opened += 1
        uri = f"file:///tmp/{TEST_DOC.format(self.opened)}"
        self.diagnose([text], [uri])
        return self.request(method, {"textDocument": {"uri": uri}, "position": {"line": line, "character": col}})

    def close(self) -> None:
        try:
            self.request("shutdown", {})
            self.notify("exit", {})
            self.proc.wait(5)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


SETTINGS = {
    "validate": True,
    "hover": True,
    "completion": True,
    "format": {"enable": False},
    "schemaStore": {"enable": False},  # offline, and no other schema than ours
    "schemas": {SCHEMA.as_uri(): TEST_DOC.format("*")},
}


@pytest.fixture(scope="module")
def server():
    server = Server([shutil.which("node") or "node", str(_install()), "--stdio"])
    capabilities = {
        "textDocument": {
            "completion": {"completionItem": {"snippetSupport": True, "documentationFormat": ["markdown"]}},
            "hover": {"contentFormat": ["markdown"]},
        },
        "workspace": {"configuration": True},
    }
    server.request("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": capabilities})
    server.notify("initialized", {})
    server.notify("workspace/didChangeConfiguration", {"settings": {"yaml": SETTINGS}})
    yield server
    server.close()


def unlined(text: str) -> str:
    """`text` without its schema modeline (a docs example's is relative to a file it is not in),
    every line at its number: the settings give the schema."""
    return re.sub(r"^# yaml-language-server: .*$", "#", text, flags=re.M)


def lines(diagnostics: list[dict]) -> set[int]:
    """1-based lines the diagnostics start on."""
    return {d["range"]["start"]["line"] + 1 for d in diagnostics}


# --- the corpora -----------------------------------------------------------------------------


def _completed(block: str) -> str:
    """A docs example as a whole spec: a list of layers goes under `layers:`; a section is given
    the required keys it lacks, below it (its own lines keep their numbers)."""
    if block.lstrip().startswith("- "):
        return HEAD + "layers:\n" + "".join(f"  {line}\n" for line in block.splitlines())
    keys = set(re.findall(r"^([a-z_]+):", block, re.M))
    extra = "".join(
        v
        for k, v in (("netspec", "netspec: 1\n"), ("inputs", HEAD[11:]), ("layers", "layers: [flatten]\n"))
        if k not in keys
    )
    return block + ("" if block.endswith("\n") else "\n") + extra


def _docs_examples() -> list[tuple[str, str]]:
    """(where, text) of every YAML example in the README and docs/ that netspec's schema accepts,
    whole or completed, and of every layer's documented example (docs/layers.md)."""
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for k, block in enumerate(re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S)):
            text = _completed(block)
            try:
                if not validate(load_text(text, "example.yaml")):
                    out.append((f"{path.name}#{k}", text))
            except SpecError:  # a fragment that is no YAML document alone
                continue
    for name, op in sorted(all_ops().items()):
        out += [(f"{name} example {i}", example_spec(op, ex)) for i, ex in enumerate(op.examples)]
    return out


SHIPPED = sorted((ROOT / "specs").glob("*.yaml"))
DOCS = _docs_examples()


def _init_outputs(cli, folder: Path) -> list[Path]:
    """`netspec init` of each template, on synthetic data, outside the repository."""
    from netspec.init import TEMPLATES

    out = []
    for template in TEMPLATES:
        path = folder / f"{template}.yaml"
        code, _, err = cli("init", path, "--template", template, "--data", "synthetic")
        assert code == 0, err
        out.append(path)
    return out


# (name, spec text, the text netspec's error points at): one mistake each
MISTAKES = [
    ("misspelt layer", HEAD + "layers:\n  - relux\n", "relux"),
    ("misspelt layer, mapping", HEAD + "layers:\n  - relux: {negative_slope: 0.1}\n", "relux"),
    ("unknown block", HEAD + "layers:\n  - cbrr: {channels: 4}\n", "cbrr"),
    ("bare layer that needs parameters", HEAD + "layers:\n  - conv2d\n  - relu\n", "conv2d"),
    ("bare shorthand layer that needs parameters", HEAD + "layers:\n  - flatten\n  - linear\n", "linear"),
    ("unknown key", HEAD + "layers:\n  - conv2d: {out_channels: 6, kernal_size: 5}\n", "kernal_size"),
    ("out of range", HEAD + "layers:\n  - conv2d:\n      out_channels: 0\n      kernel_size: 3\n", "out_channels"),
    ("enum", HEAD + "layers:\n  - conv2d: {out_channels: 6, kernel_size: 3, padding: samee}\n", "samee"),
    (
        "enum of a recurrent layer",
        "netspec: 1\ninputs:\n  x: {shape: [T, 3]}\nlayers:\n  - lstm: {hidden_size: 8, output: maxx}\n",
        "maxx",
    ),
    ("wrong type", HEAD + "layers:\n  - flatten\n  - linear: {out_features: ten}\n", ": ten"),
    ("layer name", HEAD + "layers:\n  - relu: {name: 'a b'}\n", "'a b'"),
    ("format version", "netspec: 2\ninputs:\n  x: {shape: [3, 8, 8]}\nlayers: [relu]\n", "2"),
    ("unknown top-level key", HEAD + "layerz: []\nlayers: [relu]\n", "layerz"),
    ("block named as a layer type", HEAD + "blocks:\n  relu:\n    layers: [tanh]\nlayers:\n  - relu\n", "relu:"),
    ("block name", HEAD + "blocks:\n  9x:\n    layers: [tanh]\nlayers:\n  - relu\n", "9x"),
    (
        "block use repeat",
        HEAD + "blocks:\n  cbr:\n    layers: [relu]\nlayers:\n  - cbr: {repeat: -1}\n",
        "-1",
    ),
    ("block use from", HEAD + "blocks:\n  cbr:\n    layers: [relu]\nlayers:\n  - cbr: {from: 3}\n", "3}"),
    (
        "bare layer in a block",
        HEAD + "blocks:\n  cbr:\n    layers:\n      - conv2d\nlayers:\n  - cbr\n",
        "conv2d",
    ),
    ("missing key", HEAD + "layers:\n  - conv2d:\n      out_channels: 6\n", "conv2d"),
    (
        "unknown optimizer",
        HEAD + "layers: [flatten, {linear: 10}]\ntrain:\n  data: {source: digits}\n  optimizer: {name: adamm}\n",
        "adamm",
    ),
    ("input name", "netspec: 1\ninputs:\n  2x: {shape: [3]}\nlayers: [relu]\n", "2x"),
    (
        "train setting",
        HEAD + "layers: [flatten, {linear: 10}]\ntrain:\n  data: {source: digits}\n  epochs: 0\n",
        "epochs",
    ),
]


# --- no false positives ----------------------------------------------------------------------


def test_valid_specs_have_no_diagnostics(server, cli, tmp_path):
    """Every shipped spec (at its own path: its modeline is checked too), docs example and
    `netspec init` output, which resolves its schema with no network."""
    assert len(DOCS) > 110, "the docs examples went missing"
    inits = _init_outputs(cli, tmp_path)
    texts = [p.read_text() for p in SHIPPED] + [unlined(t) for _, t in DOCS] + [p.read_text() for p in inits]
    uris = [p.as_uri() for p in SHIPPED] + [None] * len(DOCS) + [p.as_uri() for p in inits]
    names = [p.name for p in SHIPPED] + [n for n, _ in DOCS] + [f"init {p.stem}" for p in inits]
    found = server.diagnose(texts, uris)
    bad = {name: [d["message"] for d in diags] for name, diags in zip(names, found, strict=True) if diags}
    assert not bad


def test_valid_specs_pass_jsonschema(cli, tmp_path):
    check = Draft202012Validator(json.loads(SCHEMA.read_text()))
    texts = [p.read_text() for p in SHIPPED] + [t for _, t in DOCS]
    texts += [p.read_text() for p in _init_outputs(cli, tmp_path)]
    for text in texts:
        errors = [e.message for e in check.iter_errors(load_text(text, "spec.yaml").data)]
        assert not errors, text


# --- mistakes --------------------------------------------------------------------------------


def test_each_mistake_is_flagged_where_netspec_flags_it(server):
    """Each mistake: `netspec check` reports it (at the needle's line) and so does the editor,
    at that line."""
    expected = []
    for name, text, needle in MISTAKES:
        res = compile_text(text, "spec.yaml")
        line = text[: text.index(needle)].count("\n") + 1
        assert not res.ok and line in {d.loc.line for d in res.errors}, (name, res.diagnostics)
        expected.append(line)
    found = server.diagnose([unlined(t) for _, t, _ in MISTAKES])
    for (name, _, _), line, diags in zip(MISTAKES, expected, found, strict=True):
        assert line in lines(diags), (name, line, diags)


def test_mistakes_fail_jsonschema():
    check = Draft202012Validator(published_schema())
    for name, text, _ in MISTAKES:
        assert not check.is_valid(load_text(text, "spec.yaml").data), name


def test_messages_are_netspecs(server):
    """The editor says what netspec says (expected, hint), not a regex or "a schema that is not
    allowed"."""
    texts = [
        HEAD + "layers:\n  - relux\n",
        HEAD + "layers:\n  - conv2d\n",
        HEAD + "blocks:\n  relu:\n    layers: [tanh]\nlayers:\n  - relu\n",
        HEAD + "layers:\n  - relu: {name: 'a b'}\n",
    ]
    said = [" ".join(d["message"] for d in diags) for diags in server.diagnose([unlined(t) for t in texts])]
    assert "unknown layer type: expected a layer type (see `netspec ops`)" in said[0]
    assert "layer needs parameters" in said[1] and "hint:" in said[1]
    assert "block has the name of a layer type" in said[2] and "not allowed" not in said[2]
    assert "invalid name: expected letters, digits and _" in said[3] and "^[" not in said[3]


# --- completion and hover --------------------------------------------------------------------


def _items(server, text: str, line: int, col: int) -> dict[str, dict]:
    found = server.at("textDocument/completion", unlined(text), line, col)
    return {i["label"]: i for i in (found["items"] if isinstance(found, dict) else found)}


def _doc(item: dict) -> str:
    doc = item.get("documentation") or ""
    return doc["value"] if isinstance(doc, dict) else doc


def test_completion_inserts_a_layers_required_keys(server):
    items = _items(server, HEAD + "layers:\n  - conv\n", 4, 8)
    assert re.search(r"conv2d:\n\s+out_channels: \$\{1\}\n\s+kernel_size: \$\{2\}", items["conv2d"]["insertText"])
    assert items["relu"]["insertText"] == "relu"  # no parameters needed: the bare form


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("  - lstm:\n      hidden_size: 8\n      output: ", ["sequence", "last", "mean", "max"]),
        ("  - conv2d:\n      out_channels: 4\n      kernel_size: 3\n      padding: ", ["same", "valid"]),
    ],
    ids=["lstm.output", "conv2d.padding"],
)
def test_completion_offers_every_enum_value_with_its_meaning(server, text, values):
    text = HEAD + "layers:\n" + text
    last = text.splitlines()[-1]
    items = _items(server, text + "\n", text.count("\n"), len(last))
    for v in values:
        assert v in items and _doc(items[v]), (v, sorted(items))


def _hover(server, text: str, needle: str) -> str:
    before = text[: text.index(needle)]
    line, col = before.count("\n"), len(before) - (before.rfind("\n") + 1) + 1
    found = server.at("textDocument/hover", unlined(text), line, col)
    return found["contents"]["value"] if found else ""


def test_hover_shows_the_layers_docs_and_defaults(server):
    ops = all_ops()
    text = (
        HEAD
        + "layers:\n  - maxpool2d: 2\n  - relu\n  - conv2d:\n      out_channels: 4\n      kernel_size: 3\n      padding: same\n"
    )

    def plain(markdown: str) -> str:
        return markdown.replace("\\", "")

    assert plain(ops["maxpool2d"].doc) in plain(_hover(server, text, "maxpool2d"))  # shorthand form
    assert plain(ops["relu"].doc) in plain(_hover(server, text, "relu"))  # bare form
    conv = plain(_hover(server, text, "conv2d"))
    assert plain(ops["conv2d"].doc) in conv and "stride` (default `1`)" in conv
    padding = plain(_hover(server, text, "padding"))
    assert "default: `0`" in padding and "`valid`:" in padding
