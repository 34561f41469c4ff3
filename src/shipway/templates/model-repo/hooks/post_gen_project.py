"""Keep only the chosen CI system's pipeline file."""

import shutil
from pathlib import Path

CI = "{{ cookiecutter.ci }}"

if CI != "github":
    shutil.rmtree(Path(".github"))
if CI != "gitlab":
    Path(".gitlab-ci.yml").unlink()
