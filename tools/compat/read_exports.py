"""Reads an export of `pipeline export-data` back with the real readers and prints what they
saw as JSON: the fixture `pipeline/tests/fixtures/exports/read_by_datasets.json`, which the
exports test compares its own reading with (CI has no Python). Recorded once:

    python3 -m venv /tmp/fx && /tmp/fx/bin/pip install datasets
    PIPELINE_EXPORT_FIXTURE=/tmp/export cargo test -p pipeline --lib exports_read_back
    /tmp/fx/bin/python tools/compat/read_exports.py /tmp/export \
        > pipeline/tests/fixtures/exports/read_by_datasets.json

Hugging Face: `datasets.load_dataset(<hf/arm folder>)`, which follows the card's `configs`
(data files, split). LLaMA-Factory: its `dataset_info.json` entries are checked against the
files they name, with the columns and tags LLaMA-Factory's converters read.
"""

import json
import sys
from pathlib import Path

import datasets

root = Path(sys.argv[1])
out = {"datasets_version": datasets.__version__}
for folder in sorted((root / "hf").iterdir()):
    ds = datasets.load_dataset(str(folder))
    train = ds["train"]
    out[folder.name] = {
        "splits": sorted(ds.keys()),
        "features": {name: str(f.dtype) for name, f in train.features.items()},
        "rows": [dict(r) for r in train],
    }
info = json.loads((root / "llamafactory" / "dataset_info.json").read_text())
checked = {}
for name, entry in info.items():
    rows = json.loads((root / "llamafactory" / entry["file_name"]).read_text())
    if entry.get("formatting", "alpaca") == "alpaca":
        cols = entry.get("columns", {})
        prompt, query, response = cols.get("prompt", "instruction"), cols.get("query", "input"), cols.get("response", "output")
        assert all(prompt in r and query in r and response in r for r in rows), name
    else:
        tags = entry["tags"]
        msgs = entry["columns"]["messages"]
        for r in rows:
            turns = r[msgs]
            assert [t[tags["role_tag"]] for t in turns] == [tags["user_tag"], tags["assistant_tag"]], name
            assert all(isinstance(t[tags["content_tag"]], str) for t in turns), name
    checked[name] = len(rows)
out["llamafactory_rows"] = checked
json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
print()
