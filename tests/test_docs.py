"""The documentation stays true: the committed JSON Schema, the CLI and the README's API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from layerlab.cli import main as cli_main
from layerlab.graph import graph_json_schema

ROOT = Path(__file__).resolve().parents[1]

DIGITS = {
    "format": "layerlab.graph/1",
    "name": "tiny",
    "nodes": [
        {"id": "x", "op": "Input", "params": {"shape": [1, 8, 8]}},
        {"id": "conv1", "op": "Conv2d", "params": {"out_channels": 4, "padding": "same"}},
        {"id": "flat", "op": "Flatten"},
        {"id": "fc", "op": "Linear", "params": {"out_features": 10}},
        {"id": "y", "op": "Output"},
    ],
    "edges": [
        {"source": "x", "target": "conv1"},
        {"source": "conv1", "target": "flat"},
        {"source": "flat", "target": "fc"},
        {"source": "fc", "target": "y"},
    ],
}


def test_committed_schema_matches_the_models() -> None:
    committed = json.loads((ROOT / "docs" / "graph.schema.json").read_text())
    assert committed == graph_json_schema(), "regenerate with: layerlab schema > docs/graph.schema.json"


def test_cli_shapes_table_and_exit_codes(tmp_path: Path, capsys) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(DIGITS))
    assert cli_main(["shapes", str(good)]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "4×8×8" in out and "Total params: 2,610" in out

    bad = json.loads(json.dumps(DIGITS))
    bad["nodes"] = [n for n in bad["nodes"] if n["id"] != "flat"]
    bad["edges"] = [{"source": "x", "target": "conv1"}, {"source": "conv1", "target": "fc"},
                    {"source": "fc", "target": "y"}]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert cli_main(["shapes", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["errors"][0]["node"] == "fc"
    assert report["errors"][0]["suggestion"] == "insert Flatten before fc"

    missing = tmp_path / "nope.json"
    assert cli_main(["shapes", str(missing)]) == 2


def test_cli_export_python_runs(tmp_path: Path) -> None:
    src = tmp_path / "g.json"
    src.write_text(json.dumps(DIGITS))
    out = tmp_path / "model.py"
    assert cli_main(["export", str(src), "--format", "python", "-o", str(out)]) == 0
    run = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "torch.Size([2, 10])" in run.stdout


def test_readme_python_api_example_runs() -> None:
    """The README's Python API block is executed as written."""
    text = (ROOT / "README.md").read_text()
    start = text.index("```python\n", text.index("## Python API")) + len("```python\n")
    code = text[start : text.index("```", start)]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["report"].valid
    assert namespace["model"] is not None
