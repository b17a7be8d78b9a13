"""A verdict as JUnit XML: one testcase per gate, for CI systems that show test reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .verdict import Verdict


def to_junit(verdict: Verdict) -> str:
    failed = [g for g in verdict.gates if g.status == "fail" and g.gate.severity == "error"]
    skipped = [g for g in verdict.gates if g.status == "n/a"]
    suite = ET.Element(
        "testsuite",
        name=f"agenttrace audit {verdict.run_id}",
        tests=str(len(verdict.gates)),
        failures=str(len(failed)),
        skipped=str(len(skipped)),
        errors="0",
    )
    for result in verdict.gates:
        case = ET.SubElement(suite, "testcase", classname="agenttrace.gates", name=result.gate.name)
        if result.status == "n/a":
            ET.SubElement(case, "skipped", message="does not apply to this run")
        elif result.status == "fail":
            reasons = [str(v["reason"]) for v in result.violations]
            if result.gate.severity == "error":
                element = ET.SubElement(case, "failure", message=reasons[0], type="gate")
            else:  # a warning does not fail the run: reported, not failed
                element = ET.SubElement(case, "system-out")
            element.text = "\n".join(reasons)
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
