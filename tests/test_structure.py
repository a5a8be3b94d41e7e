"""The layering the code relies on: train/ below methods/, configs without the libraries they configure."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def imported_modules(source: str, package: str) -> set[str]:
  """Every module an import statement of the source names, relative imports resolved against `package`."""
  names = set()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parent = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(parent + ([base] if base else []))
      names.add(base)
      names.update(f"{base}.{alias.name}" for alias in node.names)
  return names


def test_imported_modules_sees_every_import_form():
  source = ("import jreid.methods.itkm\nfrom jreid import methods\nfrom ..methods import base\nfrom . import step\n"
            "def late():\n  import jreid.methods.unireid\n")
  assert imported_modules(source, "jreid.train") == {
      "jreid.methods.itkm", "jreid", "jreid.methods", "jreid.methods.base", "jreid.train", "jreid.train.step",
      "jreid.methods.unireid"}


@pytest.mark.parametrize("path", sorted((ROOT / "jreid" / "train").glob("*.py")), ids=lambda p: p.name)
def test_train_imports_no_method(path):
  methods = sorted(name for name in imported_modules(path.read_text(), "jreid.train") if name == "jreid.methods"
                   or name.startswith("jreid.methods."))
  assert not methods, f"{path.relative_to(ROOT)} imports {methods}: jreid/train/ sits below jreid/methods/"


def test_loading_a_config_imports_neither_jax_nor_the_data_pipeline():
  code = ("import sys\n"
          "from configs import image_reid, instruct, itkm, smoke, unified, unireid\n"
          "for module in (image_reid, instruct, itkm, unified, unireid):\n"
          "  for preset in module.PRESETS:\n"
          "    module.get_config(preset)\n"
          "smoke.get_config()\n"
          "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', 'data_pipelines')))\n")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "[]", out.stdout
