"""Office Math (OMML: Word's and PowerPoint's equations) written as one line of text, for the
Word and slide readers: ``cos θ=(a·b)/(|a||b|)``, ``∑_(i)(y_(i) log (p))``."""

from __future__ import annotations

M = "{http://schemas.openxmlformats.org/officeDocument/2006/math}"
_STRUCTURES = frozenset(f"{M}{k}" for k in ("f", "rad", "sSup", "sSub", "sSubSup", "nary", "d"))


def text(el) -> str:
    """The equation under ``el`` (``m:oMathPara``, ``m:oMath`` or any part of one) on one line:
    a fraction as ``(a)/(b)``, a power as ``x^(2)``, an index as ``x_(i)``, a root as ``√(x)``,
    a sum as ``∑_(i)(x)``, brackets with their characters."""
    out: list[str] = []
    for child in el:
        if not isinstance(child.tag, str) or child.tag.endswith("Pr"):  # properties hold no text
            continue
        if child.tag == f"{M}t":
            out.append(child.text or "")
        elif child.tag in _STRUCTURES:
            out.append(_structure(child))
        else:
            out.append(text(child))
    return "".join(out)


def _char(el, name: str, default: str) -> str:
    """A character a structure keeps as a property (``m:chr``, ``m:begChr``)."""
    kind = el.tag.rsplit("}", 1)[-1]
    found = el.find(f"{M}{kind}Pr/{M}{name}")
    return found.get(f"{M}val", default) if found is not None else default


def _structure(el) -> str:
    def part(name: str) -> str:
        found = el.find(f"{M}{name}")
        return text(found) if found is not None else ""

    kind = el.tag.rsplit("}", 1)[-1]
    if kind == "d":
        return f"{_char(el, 'begChr', '(')}{part('e')}{_char(el, 'endChr', ')')}"
    if kind == "nary":
        sub, sup = part("sub"), part("sup")
        return _char(el, "chr", "∫") + (f"_({sub})" if sub else "") + (f"^({sup})" if sup else "") + f"({part('e')})"
    if kind == "f":
        return f"({part('num')})/({part('den')})"
    if kind == "rad":
        return f"{part('deg')}√({part('e')})"
    base = part("e")
    if kind == "sSup":
        return f"{base}^({part('sup')})"
    if kind == "sSub":
        return f"{base}_({part('sub')})"
    return f"{base}_({part('sub')})^({part('sup')})"  # sSubSup
