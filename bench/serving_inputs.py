"""bench/serving.py for text and image models: the template's BentoML service vs the FastAPI baseline, side by side.

    python bench/serving_inputs.py [--inputs text,image] [--users 50] [--duration 20] [--rounds 2] [--quick]
                                   [--set serving.batching.enabled=false ...]

Run with a python that has modelctl (`.venv/bin/python`, `.tox/tooling/bin/python`). For each input kind it bakes
a fresh sklearn model from this checkout's template (`modelctl new --input KIND --no-input`, in a temporary
folder; the repository's models/ is not touched), takes the model's own environment the way modelctl does
(`modelctl.envs`, shared by content key under MODELCTL_ENV_CACHE, `.tox/.model-envs` by default) and trains it
there. FastAPI is put on that environment's path from a folder of its own, never installed into it.

Then bench/serving.py's rounds: the baked service (`bentoml serve`) and bench/fastapi_baseline.py (same trained
model; text: the model's own request rows, so the same length limit; image: base64, Pillow within the same
byte/pixel/format limits, grey levels at the model's size, by hand), each started fresh, one worker on
127.0.0.1, loaded by the same Locust user with the model's own sample requests. The order alternates every round
and the kinds take turns round by round, so noise hits both sides. Prints a table per kind: RPS, P50, P90 and
the ratio of each to FastAPI's (BentoML / FastAPI). `--quick` is a smoke run (a few seconds per side).
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import (  # noqa: E402
    ROOT,
    Result,
    add_load_options,
    median,
    one_round,
    patched_copy,
    train,
)

KINDS = ("text", "image")
# In the local package index (offline); annotated-doc is the one dependency a model environment lacks.
FASTAPI = ("fastapi==0.142.2", "annotated-doc==0.0.7")
# Long enough that Locust completes requests on both sides: its users build their requests after the run's clock
# has started (importing the model's request schema), which took about 8 s on a busy machine (CI: every request of
# an 8 s run came after its end).
QUICK = {"users": 10, "duration": 20, "rounds": 1}


@dataclass
class Bench:
    kind: str
    model_dir: Path
    python: str
    tag: str = ""
    results: list[Result] = field(default_factory=list)
    answers: dict[str, dict[str, tuple[int, Any]]] = field(default_factory=dict)


def bake(kind: str, models: Path) -> Path:
    """A fresh model of ``kind`` from this checkout's template, through modelctl as a data scientist makes one."""
    modelctl = Path(sys.executable).with_name("modelctl")
    if not modelctl.is_file():
        raise SystemExit(f"no modelctl beside {sys.executable}: run this with .venv/bin/python (make bootstrap)")
    cmd = [str(modelctl), "new", f"Bench {kind.title()}", "--input", kind, "--no-input", "--output-dir", str(models)]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"`modelctl new` of a {kind} model failed (exit {run.returncode}): {run.stderr[-2000:]}")
    return models / f"bench_{kind}"


def model_python(model_dir: Path) -> str:
    """The model's own environment, created (or found by content key) the way modelctl creates it."""
    from modelctl import envs

    os.environ.setdefault(envs.CACHE_VARIABLE, str(ROOT / ".tox" / ".model-envs"))
    # A model baked a moment ago has no requirements.lock yet: installed from its requirements, as the test suites do.
    os.environ.setdefault("MODELCTL_ALLOW_UNLOCKED", "1")
    return str(envs.python_of(ROOT, model_dir.name, model_dir))


def fastapi_path(python: str, into: Path) -> Path:
    """FastAPI in a folder of its own, put on the path of ``python``'s environment (shared by content key, so never
    installed into)."""
    from uv import find_uv_bin

    cmd = [find_uv_bin(), "pip", "install", "--quiet", "--python", python, "--target", str(into), "--no-deps"]
    subprocess.run([*cmd, *FASTAPI], capture_output=True, text=True, check=True)
    return into


def png(width: int, height: int) -> bytes:
    """A black greyscale PNG (a few KB even when it declares millions of pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(bytes(width + 1) * height, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def probes(bench: Bench) -> dict[str, dict[str, Any]]:
    """Requests both sides must answer alike: the model's sample (200, same predictions) and one just over the
    input's limit in config.yaml (refused), the limit read from the same file as the service reads it."""
    serving = (yaml.safe_load((bench.model_dir / "config.yaml").read_text()) or {}).get("serving", {})
    if bench.kind == "text":
        over = {"text": "x" * (int(serving.get("max_text_chars", 5000)) + 1)}
    else:
        side = int(int(serving.get("max_image_pixels", 4_000_000)) ** 0.5) + 1
        over = {"image": base64.b64encode(png(side, side)).decode()}
    sample = json.loads((bench.model_dir / "sample_request.json").read_text())
    return {"sample": sample, "over the limit": {"instances": [over]}}


def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{url}/predict", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def same_work(bench: Bench, server: str, url: str) -> None:
    """Both servers give the sample the same predictions and refuse the same over-limit request, or the bench stops
    (asked of each server before its first load)."""
    bench.answers[server] = {name: post(url, body) for name, body in probes(bench).items()}
    if len(bench.answers) < 2:
        return
    answers = bench.answers
    checks = [
        answers["bentoml"]["sample"] == answers["fastapi"]["sample"] and answers["bentoml"]["sample"][0] == 200,
        # FastAPI answers its validation errors with 422, the service with 400: both a refusal.
        all(400 <= answers[server]["over the limit"][0] < 500 for server in answers),
    ]
    statuses = {server: {name: answer[0] for name, answer in by.items()} for server, by in answers.items()}
    if not all(checks):
        raise SystemExit(f"{bench.kind}: the two servers do not do the same work: {statuses}")
    print(f"  {bench.kind:5} same predictions for the sample, both refuse a request over the limit", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", default=",".join(KINDS), help="comma-separated input kinds (text, image)")
    add_load_options(parser)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 10 users, 20 s per side, one round")
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)
    kinds = [kind.strip() for kind in args.inputs.split(",") if kind.strip()]
    if unknown := sorted(set(kinds) - set(KINDS)):
        parser.error(f"--inputs: unknown input kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")

    with tempfile.TemporaryDirectory(prefix="bench-serving-inputs-") as name:
        tmp = Path(name)
        # A baked model's requirements name the shared library as ../../shared.
        (tmp / "repo" / "models").mkdir(parents=True)
        (tmp / "repo" / "shared").symlink_to(ROOT / "shared", target_is_directory=True)
        os.environ["BENTOML_HOME"] = str(tmp / "bentoml")
        os.environ["BENTOML_DO_NOT_TRACK"] = "true"
        benches: list[Bench] = []
        for kind in kinds:
            model_dir = bake(kind, tmp / "repo" / "models")
            benches.append(Bench(kind, model_dir, model_python(model_dir)))
        if args.set:
            print(f"config overrides: {', '.join(args.set)}")
            for bench in benches:
                bench.model_dir = patched_copy(bench.model_dir, args.set, tmp / "patched")
        extra = fastapi_path(benches[0].python, tmp / "fastapi")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(extra), os.environ.get("PYTHONPATH"))))
        for bench in benches:
            bench.tag = train(bench.model_dir, 0, bench.python)
            print(f"{bench.kind}: model {bench.model_dir.name} (template default), tag {bench.tag}", flush=True)
        print(f"{args.users} users, {args.duration}s x {args.rounds} rounds per side and kind", flush=True)
        for round_no in range(args.rounds):
            for bench in benches:
                bench.results += one_round(
                    round_no,
                    bench.model_dir,
                    bench.tag,
                    args.users,
                    args.duration,
                    tmp,
                    bench.python,
                    label=f"{bench.kind:5} ",
                    on_ready=functools.partial(same_work, bench) if round_no == 0 else None,
                )

    print("\n| input | server | RPS | P50 ms | P90 ms | RPS ratio | P90 ratio | failures |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for bench in benches:
        base = {attr: median(bench.results, "fastapi", attr) for attr in ("rps", "p90")}
        for server in ("bentoml", "fastapi"):
            rps, p50, p90 = (median(bench.results, server, attr) for attr in ("rps", "p50", "p90"))
            fails = sum(r.failures for r in bench.results if r.server == server)
            reqs = sum(r.requests for r in bench.results if r.server == server)
            print(
                f"| {bench.kind} | {server} | {rps:.0f} | {p50:.0f} | {p90:.0f} | {rps / base['rps']:.2f}x"
                f" | {p90 / base['p90']:.2f}x | {fails}/{reqs} |"
            )
    print("\nratios are BentoML / FastAPI, medians over rounds (goal: throughput >= 1.0x at P90 <= 1.2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
