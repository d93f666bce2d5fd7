"""The README's install step is idempotent: once installed, running it again installs nothing."""

import subprocess

import pytest

from conftest import ROOT


@pytest.mark.slow  # runs scripts/setup.sh twice
def test_second_install_installs_nothing():
    result = subprocess.run(["bash", "scripts/setup.sh", "--dev"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", result.stdout[-2000:]  # no apt-get, no pip output
