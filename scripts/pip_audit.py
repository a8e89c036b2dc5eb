"""pip-audit over requirements.lock, honest about what it could not check.

pip-audit asks a vulnerability service (PyPI's JSON API, or OSV) about each pinned package. Where
that service cannot be reached it skips every package and still prints "No known vulnerabilities
found" with exit status 0; this wrapper says how many packages were really audited.

Exit status: 1 when a known vulnerability is found; 0 otherwise, including when the service is
unreachable (said loudly), unless --strict, which also fails when any package could not be audited.

Usage: python scripts/pip_audit.py [--strict] [--service pypi|osv]
"""

from __future__ import annotations

import argparse
import json
import subprocess  # nosec B404
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="fail when a package could not be audited")
    parser.add_argument("--service", default="pypi", choices=["pypi", "osv"])
    parser.add_argument("--requirements", type=Path, default=ROOT / "requirements.lock")
    args = parser.parse_args(argv)

    command = [
        str(Path(sys.executable).with_name("pip-audit")),
        "--requirement",
        str(args.requirements),
        "--no-deps",  # the lock file pins every package already
        "--disable-pip",
        "--vulnerability-service",
        args.service,
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--timeout",
        "20",
    ]
    # pip-audit from this virtualenv with fixed arguments and no shell: nothing here comes from a user
    done = subprocess.run(command, capture_output=True, text=True)  # nosec B603
    try:
        report = json.loads(done.stdout)
    except ValueError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"pip-audit: could not run against the {args.service} vulnerability service: {last}")
        return 1 if args.strict else 0

    packages = report.get("dependencies", [])
    skipped = [p for p in packages if p.get("skip_reason")]
    vulnerable = [p for p in packages if p.get("vulns")]
    audited = len(packages) - len(skipped)
    for package in vulnerable:
        for vuln in package["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            print(f"VULNERABLE {package['name']}=={package['version']}: {vuln['id']} (fixed in {fixes})")
    print(
        f"pip-audit ({args.service}): {audited} of {len(packages)} pinned packages audited, "
        f"{len(vulnerable)} vulnerable"
    )
    if skipped and not audited:
        print(
            "pip-audit: the vulnerability service is not reachable from this machine, so nothing was "
            "checked; run `make audit` where pypi.org's JSON API or api.osv.dev is reachable "
            "(see docs/security.md)."
        )
    elif skipped:
        print("not audited: " + ", ".join(f"{p['name']}=={p['version']}" for p in skipped))
    if vulnerable:
        return 1
    return 1 if args.strict and skipped else 0


if __name__ == "__main__":
    sys.exit(main())
