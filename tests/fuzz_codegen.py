"""A fuzzer of the strings that reach generated code: `python -m tests.fuzz_codegen --cases N`.

Each case takes a spec from specs/, injects hostile strings (quotes, triple quotes, backslashes,
every kind of line break, NUL and other controls, bidi overrides, lone surrogates, a coding
cookie, random unicode) into the string fields a spec has (description, block descriptions, the
spec's file name, the model name, layer, input, block-argument and dim names, data.source and
data.label_column), compiles it, and for an accepted spec generates model.py, train.py and the
resolved spec. The contract: compiling returns a result (accepted, or diagnostics), never raises;
every generated file parses, holds no control character but its line ends, and keeps each spec
string unchanged where it keeps it (model.py's SPEC_FILE and DESCRIPTION constants, each block
class's DESCRIPTION, train.py's CONFIG, the resolved spec's values); no docstring holds a spec's
description. A sample of the accepted cases is also imported in a child interpreter, which must
create no file and print nothing. Failing cases are written to tests/fuzz_corpus/ as
codegen-*.json, which tests/test_codegen_strings.py replays.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).with_name("fuzz_corpus")
SEEDS = sorted((ROOT / "specs").glob("*.yaml"))

PAYLOAD = 'x"""\nimport os; os.system("touch PWNED")\n"""'
BREAKS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
HOSTILE = [
    PAYLOAD,
    "'''\nimport os; os.system('touch PWNED')\n'''",
    '"""',
    "'''",
    '"',
    "'",
    "\\",
    "\\\\",
    '\\"""',
    "\\n",
    "\\x00",
    "\\N{BULLET}",
    "\x00",
    "\t",
    "\x7f",
    "\x1b[2J",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\ud800",
    "\udfff",
    "\U000e0001",
    "é中🎉",
    "# coding: utf-7",
    "+AGEAYQ-",
    "${x}",
    "{}{0}%s%(a)s",
    "#",
    "*/ -->",
    "---\n...",
    ": {a: [b]}",
    "null",
    "import os",
    ")\nimport os\n(",
    "\n    def forward(self, x):",
    *BREAKS,
]
NAME_BITS = ["a", "x", "_", "__", "class", "None", "import", "self", "lengths", "torch", "nn", "main", "é", "1", "."]


def hostile(rng: random.Random, max_pieces: int = 4) -> str:
    """A string of a few hostile pieces and random characters."""
    out = []
    for _ in range(rng.randint(1, max_pieces)):
        k = rng.random()
        if k < 0.6:
            out.append(rng.choice(HOSTILE))
        elif k < 0.8:
            out.append("".join(chr(rng.randrange(0x20, 0x7F)) for _ in range(rng.randint(1, 8))))
        else:
            out.append("".join(chr(rng.randrange(0, 0x110000)) for _ in range(rng.randint(1, 3))))
    return "".join(out)


def hostile_name(rng: random.Random) -> str:
    """Mostly names the schema must refuse; some it may accept."""
    if rng.random() < 0.5:
        return "".join(rng.choice(NAME_BITS) for _ in range(rng.randint(1, 3)))
    return rng.choice(["n", "net", "a.b", "x_1"]) + hostile(rng, 2)


# ----------------------------------------------------------------------------- one case


def make_case(rng: random.Random) -> dict:
    """A spec (its data) with hostile strings in its string fields, and a hostile file name."""
    data = yaml.safe_load(rng.choice(SEEDS).read_text())
    data["description"] = hostile(rng)
    for block in (data.get("blocks") or {}).values():
        if isinstance(block, dict) and rng.random() < 0.8:
            block["description"] = hostile(rng)
    train = data.get("train")
    if isinstance(train, dict):
        if not isinstance(train.get("data"), dict):
            train["data"] = {"source": train.get("data", "synthetic")}
        d = train["data"]
        if rng.random() < 0.7:
            d["label_column"] = hostile(rng)
        if rng.random() < 0.5:
            d["source"] = hostile(rng) + rng.choice([".csv", ".npz", ""])
    if rng.random() < 0.3:
        data["name"] = (
            hostile_name(rng)
            if rng.random() < 0.5
            else rng.choice(["m-1", "a.b", "x_", "9z", "-", "._", "08", "1e3", "0x1F", ".inf", "~"])
        )
    if rng.random() < 0.15:  # a layer name
        layers = [x for x in data.get("layers", []) if isinstance(x, dict) and len(x) == 1]
        if layers:
            lay = rng.choice(layers)
            (op,) = lay
            if isinstance(lay[op], dict):
                lay[op]["name"] = hostile_name(rng)
    if rng.random() < 0.1 and isinstance(data.get("inputs"), dict) and len(data["inputs"]) == 1:
        ((_old, v),) = data["inputs"].items()
        data["inputs"] = {hostile_name(rng): v}
    if rng.random() < 0.1 and data.get("blocks"):
        block = rng.choice(list(data["blocks"].values()))
        if isinstance(block, dict):
            block.setdefault("args", {})[hostile_name(rng)] = 1
    if rng.random() < 0.05:
        data.setdefault("dims", {})[hostile_name(rng)] = 4
    spec_file = rng.choice(["spec.yaml", "specs/x.yaml", ""]) + hostile(rng, 2)
    return {"spec": json.dumps(data), "spec_file": spec_file}


def generate(res, spec_file: str) -> dict[str, str]:
    from netspec.lower.codegen import model_source, resolved_spec
    from netspec.lower.trainsrc import train_source

    files = {
        "model.py": model_source(res.typed, spec_file, res.doc.data.get("description", "")),
        "spec.resolved.yaml": resolved_spec(res.typed, res.doc.data, spec_file, res.train),
    }
    if res.train is not None:
        files["train.py"] = train_source(res.typed, res.train, "0123abcd", None)
    return files


def as_json(cfg: dict):
    """The config as train.py's CONFIG holds it: JSON's values (lists for tuples)."""
    return json.loads(json.dumps(cfg, ensure_ascii=False))


def _assigned(body, name: str):
    for node in body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node.value
    return None


def problems(files: dict[str, str], res, spec_file: str) -> list[str]:
    """What is unsafe or lost in the generated files; empty when all is well."""
    out = []
    data = res.doc.data
    desc = data.get("description", "")
    trees = {}
    for name, text in files.items():
        bad = sorted({repr(c) for c in text if c != "\n" and not c.isprintable()})
        if bad:
            out.append(f"{name}: control or non-printable characters {', '.join(bad[:5])}")
        if name.endswith(".py"):
            try:
                trees[name] = ast.parse(text)
            except SyntaxError as exc:
                out.append(f"{name} does not parse: {exc.msg} line {exc.lineno}")
            except (ValueError, UnicodeError) as exc:  # a NUL or a lone surrogate in the source
                out.append(f"{name} is not Python source: {exc}")
    model = trees.get("model.py")
    if model is not None:
        got = _assigned(model.body, "SPEC_FILE")
        if got is None or ast.literal_eval(got) != spec_file:
            out.append("model.py: SPEC_FILE does not hold the spec file's name")
        got = _assigned(model.body, "DESCRIPTION")
        if desc and (got is None or ast.literal_eval(got) != desc):
            out.append("model.py: DESCRIPTION does not hold the description")
        docs = [ast.get_docstring(model, clean=False) or ""]
        want = {}
        for inst in res.typed.graph.instances:
            if inst.description:
                want.setdefault(inst.block, inst.description)
        seen = {}
        for node in model.body:
            if isinstance(node, ast.ClassDef):
                docs.append(ast.get_docstring(node, clean=False) or "")
                got = _assigned(node.body, "DESCRIPTION")
                doc = docs[-1]
                if doc.startswith("Block `"):
                    block = doc[len("Block `") :].split("`", 1)[0]
                    seen[block] = None if got is None else ast.literal_eval(got)
        for block, text in want.items():
            if block in seen and seen[block] != text:
                out.append(f"model.py: block {block!r}'s DESCRIPTION does not hold its description")
        for text in [desc, *want.values()]:
            if len(text.strip()) > 3 and any(text in d for d in docs):
                out.append("model.py: a description is pasted into a docstring")
    train = trees.get("train.py")
    if train is not None:
        got = _assigned(train.body, "CONFIG")
        ok = (
            isinstance(got, ast.Call)
            and isinstance(got.func, ast.Attribute)
            and got.func.attr == "loads"
            and len(got.args) == 1
            and isinstance(got.args[0], ast.Constant)
        )
        if not ok or json.loads(got.args[0].value) != as_json(res.train):
            out.append("train.py: CONFIG is not json.loads of a literal equal to the config")
    from netspec.spec.loader import load_text

    resolved = load_text(files["spec.resolved.yaml"]).data  # as netspec reads it (YAML 1.2)
    if resolved.get("description", "") != desc:
        out.append("spec.resolved.yaml: the description changed")
    if resolved.get("name") != res.typed.graph.name:
        out.append("spec.resolved.yaml: the name changed")
    if res.train is not None:
        for key in ("source", "label_column"):
            if resolved["train"]["data"][key] != res.train["data"][key]:
                out.append(f"spec.resolved.yaml: train.data.{key} changed")
    return out


def run_case(case: dict) -> tuple[str, str, dict | None]:
    """(outcome, detail, files): accepted, rejected, crash (an exception escaped) or unsafe."""
    from netspec.compiler import compile_text

    try:
        res = compile_text(case["spec"], file=case["spec_file"])
    except Exception:
        return "crash", traceback.format_exc(), None
    if not res.ok:
        bad = [d for d in res.errors if not d.message or not d.code]
        return ("crash", f"diagnostic without message/code: {bad}", None) if bad else ("rejected", "", None)
    try:
        files = generate(res, case["spec_file"])
    except Exception:
        return "crash", traceback.format_exc(), None
    try:
        found = problems(files, res, case["spec_file"])
    except Exception:  # a file so broken that checking it failed
        found = [traceback.format_exc()]
    if found:
        return "unsafe", "\n".join(found), files
    return "accepted", "", files


# ----------------------------------------------------------------------------- the child check

CHILD = r"""
import contextlib, importlib.util, io, os, sys
out = {}
for d in sys.argv[1:]:
    for name in ("model.py", "train.py"):
        if not os.path.exists(os.path.join(d, name)):
            continue
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            spec = importlib.util.spec_from_file_location(name[:-3] + "_" + os.path.basename(d), os.path.join(d, name))
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)  # train.py: imported, so main() does not run
        key = d + "/" + name
        out[key] = {"printed": buf.getvalue(), "DESCRIPTION": getattr(mod, "DESCRIPTION", None),
                    "SPEC_FILE": getattr(mod, "SPEC_FILE", None), "CONFIG": getattr(mod, "CONFIG", None)}
print(ascii(out))  # not JSON: it would join an escaped surrogate pair into one character
"""


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def import_check(cases: list[tuple[dict[str, str], str, str, dict | None]], timeout: float = 600) -> list[str]:
    """Import every (files, spec_file, description, config) case's model.py and train.py in one
    child interpreter (-I: isolated, -B: no __pycache__). Returns the problems found."""
    out = []
    with tempfile.TemporaryDirectory(prefix="netspec-fuzz-import-") as tmp:
        root = Path(tmp)
        dirs = []
        for k, (files, *_rest) in enumerate(cases):
            d = root / f"c{k}"
            d.mkdir()
            for name in ("model.py", "train.py"):
                if name in files:
                    (d / name).write_text(files[name], encoding="utf-8")
            dirs.append(d)
        work = root / "cwd"
        work.mkdir()
        before = _listing(root)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(
            [sys.executable, "-I", "-B", "-c", CHILD, *map(str, dirs)],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        created = _listing(root) - before
        if created:
            out.append(f"importing created files: {sorted(created)[:5]}")
        if proc.returncode != 0:
            return [*out, f"the import child failed: {proc.stderr[-2000:]}"]
        if proc.stderr:
            out.append(f"the import child wrote to stderr: {proc.stderr[-500:]}")
        got = ast.literal_eval(proc.stdout)
        for d, (files, spec_file, desc, cfg) in zip(dirs, cases, strict=True):
            m = got.get(f"{d}/model.py")
            if m is None or m["printed"] or m["SPEC_FILE"] != spec_file or (desc and m["DESCRIPTION"] != desc):
                out.append(f"{d.name}/model.py: printed {m and m['printed']!r} or lost a string")
            if "train.py" in files:
                t = got.get(f"{d}/train.py")
                if t is None or t["printed"] or t["CONFIG"] != as_json(cfg):
                    out.append(f"{d.name}/train.py: printed something or CONFIG differs")
    return out


# ----------------------------------------------------------------------------- a campaign


def _save(corpus: Path, kind: str, case: dict, detail: str) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    blob = json.dumps(case, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
    (corpus / f"codegen-{kind}-{digest}.json").write_text(json.dumps({**case, "detail": detail}, indent=1) + "\n")


def campaign(cases: int, seed: int, corpus: Path, sample_every: int = 100, verbose: bool = False) -> dict:
    rng = random.Random(seed)
    counts = {"cases": 0, "accepted": 0, "rejected": 0, "crash": 0, "unsafe": 0, "imported": 0, "import_problems": 0}
    sample = []
    start = time.perf_counter()
    for i in range(cases):
        case = make_case(rng)
        outcome, detail, files = run_case(case)
        counts["cases"] += 1
        counts[outcome] += 1
        if outcome in ("crash", "unsafe"):
            _save(corpus, outcome, case, detail)
            if verbose:
                print(f"case {i}: {outcome}\n{detail}", file=sys.stderr)
        if outcome == "accepted" and counts["accepted"] % sample_every == 1:
            from netspec.compiler import compile_text

            res = compile_text(case["spec"], file=case["spec_file"])
            sample.append((files, case["spec_file"], res.doc.data.get("description", ""), res.train))
    for k in range(0, len(sample), 25):  # a few children: one import of torch serves many files
        found = import_check(sample[k : k + 25])
        counts["import_problems"] += len(found)
        for f in found:
            print(f"import check: {f}", file=sys.stderr)
    counts["imported"] = len(sample)
    counts["wall_s"] = round(time.perf_counter() - start, 1)
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample-every", type=int, default=100, help="import one accepted case in N in a child")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    counts = campaign(args.cases, args.seed, args.corpus, args.sample_every, args.verbose)
    print(json.dumps(counts))
    return 1 if counts["crash"] or counts["unsafe"] or counts["import_problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
