"""Accessibility audits in the browser: axe-core's WCAG 2.0/2.1 A and AA rules.

axe-core is a test asset in ``tests/assets`` (see its README): nothing is fetched.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

AXE = Path(__file__).parent / "assets" / "axe.min.js"
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")

_RUN = """
var done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
  .then(function (r) {
    done(r.violations.map(function (v) {
      return {id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.map(function (n) { return n.target.join(' ') + ' — ' +
                                                 (n.failureSummary || ''); })};
    }));
  }, function (e) { done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]); });
"""


@cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def audit(driver) -> list[dict]:
    """The violations axe finds on the page the driver shows (an empty list: none)."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(_axe_source())
    driver.set_script_timeout(60)
    return driver.execute_async_script(_RUN, list(WCAG_TAGS))


def summary(violations: list[dict]) -> str:
    """One line per violation and node, for an assertion message."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} elements): {v['help']}")
        lines += [f"    {n}" for n in v["nodes"][:5]]
    return "\n".join(lines)
