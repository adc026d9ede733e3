"""Reads an export of `pipeline export-data` back with the real readers and prints what they
saw as JSON: the fixture `pipeline/tests/fixtures/exports/read_back.json`, which the
exports test compares its own reading with (CI has no Python). Recorded once:

    python3 -m venv /tmp/fx && /tmp/fx/bin/pip install datasets
    /tmp/fx/bin/pip install --no-deps llamafactory==0.9.5 peft trl omegaconf
    PIPELINE_EXPORT_FIXTURE=/tmp/export cargo test -p pipeline --test exports exports_read_back
    PYTHONPATH=.venv-parity/lib/python3.11/site-packages \
        /tmp/fx/bin/python tools/compat/read_exports.py /tmp/export \
        > pipeline/tests/fixtures/exports/read_back.json

(`.venv-parity` lends torch and transformers, which LLaMA-Factory's data package imports.)

Hugging Face: `datasets.load_dataset(<hf/arm folder>)`, which follows the card's `configs`
(data files, split). LLaMA-Factory 0.9.5: its own `get_dataset_list` parses our
`dataset_info.json` and its own alpaca/sharegpt converters align every row (what its loader does
before tokenizing); the aligned prompt and response of each row are recorded.
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

# Audio/video extras its multimodal plugin imports at load time; unused for text.
import importlib.machinery
import types

for name in ["torchaudio", "av", "librosa"]:
    stub = types.ModuleType(name)
    stub.__spec__ = importlib.machinery.ModuleSpec(name, None)
    sys.modules.setdefault(name, stub)
import llamafactory
from llamafactory.data.converter import get_dataset_converter
from llamafactory.data.parser import get_dataset_list

out["llamafactory_version"] = llamafactory.__version__
aligned = {}
for attr in get_dataset_list(sorted(info), str(root / "llamafactory")):
    rows = json.loads((root / "llamafactory" / attr.dataset_name).read_text())
    converter = get_dataset_converter(attr.formatting, attr, types.SimpleNamespace(media_dir=str(root)))
    aligned[attr.dataset_name + " " + attr.formatting] = [
        {"prompt": [t["content"] for t in a["_prompt"]], "response": [t["content"] for t in a["_response"]]}
        for a in map(converter, rows)
    ]
out["llamafactory_aligned"] = aligned
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
