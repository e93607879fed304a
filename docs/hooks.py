"""MkDocs hook: show the Sphinx roles of the docstrings (``:class:`~a.b.C```, ``:func:`f```) as plain code.

The docstrings follow PyTorch's habit of Sphinx cross-reference roles; Markdown would print the role name
(``:class:``) in front of the code. A ``~`` keeps only the last dotted part, as Sphinx does.
"""
from __future__ import annotations

import re

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):<code>(~?)([^<]*)</code>")


def _plain(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return _ROLE.sub(_plain, html)
