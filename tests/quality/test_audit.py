"""quality.audit: the pip-audit summary, on hand-written reports (no advisory service is called)."""

from __future__ import annotations

import json

import pytest

from quality import audit

CLEAN = {"name": "requests", "version": "2.32.4", "vulns": []}
VULNERABLE = {
    "name": "pillow",
    "version": "10.0.0",
    "vulns": [
        {"id": "PYSEC-2023-175", "fix_versions": ["10.0.1"], "aliases": ["CVE-2023-4863"], "description": "libwebp"},
        {"id": "GHSA-xxxx-yyyy-zzzz", "fix_versions": [], "aliases": []},
    ],
}
NOT_ON_PYPI = {"name": "torch", "skip_reason": "Dependency not found on PyPI and could not be audited: torch (2.14.1)"}
EDITABLE = {"name": "pcclip", "skip_reason": "distribution marked as editable"}


def report(*dependencies: dict) -> dict:
    return {"dependencies": list(dependencies), "fixes": []}


def test_a_clean_audit_exits_0_and_names_what_was_not_audited():
    summary = audit.summarize(report(CLEAN, NOT_ON_PYPI, EDITABLE))
    assert summary.audited == ["requests==2.32.4"]
    assert summary.skipped == {
        "Dependency not found on PyPI and could not be audited": ["torch"],
        "distribution marked as editable": ["pcclip"],
    }
    assert summary.exit_code == 0
    text = audit.format_summary(summary)
    assert text.splitlines()[0] == "pip-audit: 1 packages audited, 2 could not be audited"
    assert "torch" in text and "no known vulnerabilities (only the audited packages)" in text


def test_vulnerabilities_exit_1_with_their_fix_versions():
    summary = audit.summarize(report(CLEAN, VULNERABLE))
    assert summary.exit_code == 1
    assert [(v.package, v.id, v.fix_versions) for v in summary.vulnerabilities] == [
        ("pillow", "PYSEC-2023-175", ("10.0.1",)),
        ("pillow", "GHSA-xxxx-yyyy-zzzz", ()),
    ]
    text = audit.format_summary(summary)
    assert "VULNERABLE pillow==10.0.0: PYSEC-2023-175 (CVE-2023-4863); fixed in 10.0.1" in text
    assert "GHSA-xxxx-yyyy-zzzz; no fixed version yet" in text
    assert text.endswith("2 known vulnerabilities")


@pytest.mark.parametrize("dependencies", [(NOT_ON_PYPI, EDITABLE), ()])
def test_nothing_audited_is_no_data_not_clean(dependencies):
    """What this machine gets: pip-audit says "No known vulnerabilities found" and exits 0."""
    summary = audit.summarize(report(*dependencies))
    assert summary.exit_code == 2
    assert "NO DATA" in audit.format_summary(summary)


def test_main_summarizes_a_saved_report(tmp_path, capsys):
    path = tmp_path / "audit.json"
    path.write_text(json.dumps(report(CLEAN, VULNERABLE)))
    assert audit.main(["--report", str(path)]) == 1
    assert "VULNERABLE pillow" in capsys.readouterr().out


def test_a_failed_pip_audit_is_no_data(monkeypatch, capsys):
    def failing(extra_args):
        raise RuntimeError("pip-audit exited 1 without a report:\nNameResolutionError api.osv.dev")

    monkeypatch.setattr(audit, "run_pip_audit", failing)
    assert audit.main([]) == 2
    assert "NO DATA" in capsys.readouterr().err


def test_run_pip_audit_reads_the_json_whatever_the_exit_code(monkeypatch):
    class Done:
        returncode = 1  # pip-audit's "vulnerabilities found"
        stdout = json.dumps(report(VULNERABLE))
        stderr = "Found 2 known vulnerabilities in 1 package"

    calls = []
    monkeypatch.setattr(audit.subprocess, "run", lambda command, **kw: calls.append(command) or Done())
    assert audit.run_pip_audit(["--vulnerability-service", "osv"])["dependencies"][0]["name"] == "pillow"
    assert calls[0][-7:] == ["--format", "json", "--skip-editable", "--progress-spinner", "off",
                             "--vulnerability-service", "osv"]
    Done.stdout = ""
    with pytest.raises(RuntimeError, match="without a report"):
        audit.run_pip_audit()
