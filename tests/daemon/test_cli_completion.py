"""`pasd completion SHELL` prints a completion script each shell accepts; bash completes with it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def script(shell: str, tmp_path: Path) -> str:
    r = subprocess.run([sys.executable, "-m", "daemon", "completion", shell], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PASD_SOCKET": str(tmp_path / "s"),
                                                      "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return r.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_a_script_naming_every_command(shell: str, tmp_path: Path) -> None:
    text = script(shell, tmp_path)
    for command in ("submit", "approve", "receipts", "completion"):
        assert command in text, (shell, command)
    syntax = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-execute"]}[shell]
    if shutil.which(syntax[0]):
        path = tmp_path / f"pasd.{shell}"
        path.write_text(text)
        r = subprocess.run([*syntax, str(path)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr


def complete(path: Path, *words: str) -> list[str]:
    """What bash offers for the last of `words` after `pasd`, with the script loaded."""
    line = " ".join(["pasd", *words])
    code = (f"source {path}\n"
            "spec=$(complete -p pasd) || exit 3\n"
            "fn=$(sed -E 's/.*-F ([^ ]+).*/\\1/' <<< \"$spec\")\n"
            f"COMP_WORDS=(pasd {' '.join(words)}); COMP_CWORD={len(words)}\n"
            f"COMP_LINE='{line}'; COMP_POINT={len(line)}\n"
            "$fn pasd; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_bash_completes_commands_and_options(tmp_path: Path) -> None:
    path = tmp_path / "pasd.bash"
    path.write_text(script("bash", tmp_path))
    r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert complete(path, "sub") == ["submit"]
    assert set(complete(path, "re")) == {"receipts", "reject", "revise"}
    assert complete(path, "submit", "--wo") == ["--workspace"]
    assert re.search(r"complete .*-F \w+ pasd", subprocess.run(
        ["bash", "-c", f"source {path}; complete -p pasd"], capture_output=True, text=True).stdout)
