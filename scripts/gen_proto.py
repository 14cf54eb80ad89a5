"""Generate the Python, gRPC and typing stubs of proto/ into libs/api/src (`make proto`).

The proto tree is laid out like the Python packages (proto/symbi/policy/v1/policy.proto →
symbi.policy.v1.policy_pb2), so generated imports are absolute and need no rewriting.

    python scripts/gen_proto.py           regenerate libs/api/src/symbi
    python scripts/gen_proto.py --check   exit 1 and list the differences when the committed
                                          code is not what the protos generate
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT_ROOT = ROOT / "libs" / "api" / "src"
PACKAGE = "symbi"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def generate(out: Path, proto_root: Path = PROTO_ROOT) -> None:
    protos = sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))
    if not protos:
        raise SystemExit("no .proto files under proto/")
    well_known = resources.files("grpc_tools").joinpath("_proto")
    mypy_grpc = shutil.which("protoc-gen-mypy_grpc", path=str(Path(sys.executable).parent))
    if mypy_grpc is None:
        raise SystemExit("protoc-gen-mypy_grpc not found next to the interpreter (uv sync?)")
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy_grpc={mypy_grpc}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    result = subprocess.run(cmd, cwd=proto_root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"protoc failed with exit code {result.returncode}")


def generated_files(root: Path) -> dict[str, Path]:
    base = root / PACKAGE
    if not base.exists():
        return {}
    return {
        str(p.relative_to(root)): p
        for p in base.rglob("*")
        if p.is_file() and p.name.endswith(GENERATED_SUFFIXES)
    }


def differences(fresh_root: Path, committed_root: Path) -> list[str]:
    fresh = generated_files(fresh_root)
    committed = generated_files(committed_root)
    problems = [
        f"missing (run make proto): {name}" for name in sorted(fresh.keys() - committed.keys())
    ]
    problems += [
        f"stale, no longer generated: {name}" for name in sorted(committed.keys() - fresh.keys())
    ]
    problems += [
        f"differs from its .proto (run make proto): {name}"
        for name in sorted(fresh.keys() & committed.keys())
        if not filecmp.cmp(fresh[name], committed[name], shallow=False)
    ]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--proto-root", type=Path, default=PROTO_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root, args.proto_root)
        if args.check:
            problems = differences(fresh_root, OUT_ROOT)
            for problem in problems:
                print(problem)
            return 1 if problems else 0
        for path in generated_files(OUT_ROOT).values():
            path.unlink()
        for name, path in generated_files(fresh_root).items():
            target = OUT_ROOT / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        # Empty directories of removed protos go too.
        for directory in sorted((OUT_ROOT / PACKAGE).rglob("*"), reverse=True):
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        print(f"generated {len(generated_files(OUT_ROOT))} files into {OUT_ROOT / PACKAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
