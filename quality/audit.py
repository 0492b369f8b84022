"""Dependency audit: `pip-audit` over the installed environment, summarized without wishful thinking.

    python -m quality.audit                      # audit this interpreter's environment
    python -m quality.audit --report audit.json  # summarize a report `pip-audit --format json` wrote
    python -m quality.audit -- --vulnerability-service osv   # arguments after -- go to pip-audit

pip-audit says "No known vulnerabilities found" (exit 0) even when it could audit nothing, e.g.
when no advisory service is reachable and every package is skipped. This script counts what was
really audited and exits

    0  every audited package is clean (packages that could not be audited are listed),
    1  a known vulnerability was found (with the versions that fix it),
    2  nothing could be audited, or pip-audit failed: no data, which is not "clean".
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLEAN, VULNERABLE, NO_DATA = 0, 1, 2
PIP_AUDIT_ARGS = ("--format", "json", "--skip-editable", "--progress-spinner", "off")


@dataclass(frozen=True)
class Vulnerability:
    package: str
    version: str
    id: str
    fix_versions: tuple[str, ...]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    audited: list[str]  # "name==version" of every package checked against the advisories
    skipped: dict[str, list[str]]  # reason -> packages that could not be audited for it
    vulnerabilities: list[Vulnerability] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.vulnerabilities:
            return VULNERABLE
        return CLEAN if self.audited else NO_DATA


def summarize(report: dict) -> Summary:
    """A pip-audit JSON report (`{"dependencies": [...], "fixes": [...]}`) → what it established."""
    audited, vulnerabilities = [], []
    skipped: dict[str, list[str]] = collections.defaultdict(list)
    for dep in report.get("dependencies", []):
        name = dep.get("name", "?")
        if dep.get("skip_reason"):
            skipped[_reason(dep["skip_reason"])].append(name)
            continue
        version = dep.get("version", "?")
        audited.append(f"{name}=={version}")
        for vuln in dep.get("vulns", []):
            vulnerabilities.append(
                Vulnerability(
                    package=name,
                    version=version,
                    id=vuln.get("id", "?"),
                    fix_versions=tuple(vuln.get("fix_versions", [])),
                    aliases=tuple(vuln.get("aliases", [])),
                )
            )
    return Summary(audited=audited, skipped=dict(skipped), vulnerabilities=vulnerabilities)


def _reason(skip_reason: str) -> str:
    """pip-audit's per-package reason without the package: "Dependency not found on PyPI and
    could not be audited: torch (2.14.1)" → "Dependency not found on PyPI and could not be audited"."""
    return skip_reason.split(":", 1)[0].strip()


def format_summary(summary: Summary, *, shown: int = 8) -> str:
    lines = [f"pip-audit: {len(summary.audited)} packages audited, {_count(summary.skipped)} could not be audited"]
    for reason, names in sorted(summary.skipped.items(), key=lambda kv: -len(kv[1])):
        more = f", … (+{len(names) - shown})" if len(names) > shown else ""
        lines.append(f"  not audited ({len(names)}): {reason}: {', '.join(sorted(names)[:shown])}{more}")
    for v in summary.vulnerabilities:
        fix = f"fixed in {', '.join(v.fix_versions)}" if v.fix_versions else "no fixed version yet"
        also = f" ({', '.join(v.aliases)})" if v.aliases else ""
        lines.append(f"  VULNERABLE {v.package}=={v.version}: {v.id}{also}; {fix}")
    if summary.exit_code == VULNERABLE:
        lines.append(f"{len(summary.vulnerabilities)} known vulnerabilities")
    elif summary.exit_code == NO_DATA:
        lines.append("NO DATA: nothing was audited (is an advisory service reachable?); this is not a clean result")
    else:
        partial = " (only the audited packages)" if summary.skipped else ""
        lines.append(f"no known vulnerabilities{partial}")
    return "\n".join(lines)


def _count(skipped: dict[str, list[str]]) -> int:
    return sum(len(names) for names in skipped.values())


def run_pip_audit(extra_args: Sequence[str] = ()) -> dict:
    """Run pip-audit on this interpreter's environment; its JSON report, or RuntimeError."""
    command = [sys.executable, "-m", "pip_audit", *PIP_AUDIT_ARGS, *extra_args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    # Exit 1 also means "vulnerabilities found"; the JSON on stdout tells the cases apart.
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"pip-audit exited {done.returncode} without a report:\n{tail}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quality.audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, help="summarize this pip-audit JSON report instead of running pip-audit")
    parser.add_argument("pip_audit_args", nargs="*", help="extra pip-audit arguments (after --)")
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.report.read_text()) if args.report else run_pip_audit(args.pip_audit_args)
    except (RuntimeError, OSError, json.JSONDecodeError) as exc:
        print(f"NO DATA: {exc}", file=sys.stderr)
        return NO_DATA
    summary = summarize(report)
    print(format_summary(summary))
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
