"""Generate the Python code and type stubs for the wire contract.

Run from the repository root after editing a .proto file:

    python proto/generate.py

It writes ``bandit/proto/decision_pb2.py``, ``decision_pb2_grpc.py`` and their
``.pyi`` stubs. ``--out DIR`` writes them to another folder, which the tests use
to check that the committed files match the .proto. Needs grpcio-tools and
mypy-protobuf (the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = Path("loyalty_bandit") / "v1"
PROTO_FILES = ["decision.proto"]
DEFAULT_OUT = PROTO_ROOT.parent / "bandit" / "proto"
PYTHON_PACKAGE = "bandit.proto"

# The generated files import each other as "loyalty_bandit.v1.X", a module path
# that only exists inside protoc's include tree, so they are rewritten to the
# package the files are installed in.
PROTO_MODULE = re.compile(r"\bloyalty_bandit\.v1\.(\w+_pb2)\b")
PROTO_IMPORT = re.compile(r"^from loyalty_bandit\.v1 import (\w+_pb2)", re.MULTILINE)


def generate(out_dir: Path) -> list[Path]:
    """Run protoc into ``out_dir`` and return the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).resolve().parent / "_proto"
    written: list[Path] = []

    with tempfile.TemporaryDirectory() as tmp:
        for name in PROTO_FILES:
            args = [
                "grpc_tools.protoc",
                f"-I{PROTO_ROOT}",
                f"-I{include}",
                f"--python_out={tmp}",
                f"--mypy_out={tmp}",
                f"--grpc_python_out={tmp}",
                f"--mypy_grpc_out={tmp}",
                str(PROTO_ROOT / PACKAGE_DIR / name),
            ]
            if protoc.main(args) != 0:
                raise RuntimeError(f"protoc failed on {name}; see its output above")

        for path in sorted((Path(tmp) / PACKAGE_DIR).iterdir()):
            text = path.read_text(encoding="utf-8")
            text = PROTO_IMPORT.sub(rf"from {PYTHON_PACKAGE} import \1", text)
            text = PROTO_MODULE.sub(rf"{PYTHON_PACKAGE}.\1", text)
            target = out_dir / path.name
            target.write_text(text, encoding="utf-8")
            written.append(target)

    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args()
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
