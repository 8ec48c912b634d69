"""OCR of scanned PDF pages with Tesseract (Apache-2.0; Debian's tesseract-ocr with the
jpn, chi_sim and eng models), run as a program: the page is rendered by PDFium at
300 dpi, Tesseract returns words with boxes (TSV), words become lines in points."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from ingest.readers.base import Limits, ReaderError, is_cjk

DPI = 300
LANGS = "jpn+chi_sim+eng"


def available() -> bool:
    return shutil.which("tesseract") is not None


def tesseract_tsv(png: str, seconds: float, langs: str = LANGS) -> str:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            ["tesseract", png, "stdout", "-l", langs, "--psm", "3", "tsv"],
            capture_output=True, timeout=seconds, env=env, check=False,
        )
    except subprocess.TimeoutExpired:
        raise ReaderError(f"OCR took longer than {seconds:.0f} s for one page") from None
    if done.returncode != 0:
        raise ReaderError(f"OCR failed ({done.stderr.decode('utf-8', 'replace').strip()[:200]})")
    return done.stdout.decode("utf-8", "replace")


def words_to_lines(tsv: str, scale: float, page: int):
    """Tesseract TSV rows (level 5: words) → PdfLines in points, words joined by a space
    except between CJK characters; each character gets an equal share of its word's box."""
    from ingest.readers.pdf import PdfLine

    groups: dict[tuple, list] = {}
    for row in tsv.splitlines()[1:]:
        f = row.split("\t")
        if len(f) < 12 or f[0] != "5" or not f[11].strip():
            continue
        key = (int(f[2]), int(f[3]), int(f[4]))
        left, top, width, height = (int(x) / scale for x in f[6:10])
        groups.setdefault(key, []).append((f[11].strip(), left, top, width, height))
    lines = []
    for words in groups.values():
        text, xs = "", []
        for w, left, top, width, height in words:
            if text and not (is_cjk(text[-1]) or is_cjk(w[0])):
                text += " "
                xs.append(xs[-1] if xs else left)
            step = width / len(w)
            xs.extend(left + step * i for i in range(len(w)))
            text += w
            last_right = left + width
        xs.append(last_right)
        tops = [wd[2] for wd in words]
        bottoms = [wd[2] + wd[4] for wd in words]
        size = max(bottoms) - min(tops)
        lines.append(PdfLine(page, text, xs, min(tops), max(bottoms), size))
    if lines:  # one size for the page: box heights of scanned lines say nothing about headings
        body = sorted(ln.size for ln in lines)[len(lines) // 2]
        for ln in lines:
            ln.size = body
    return lines


def read_page(pdf, index: int, limits: Limits):
    """The lines of scanned page ``index`` (0-based) of an open pypdfium2 document."""
    page = pdf[index]
    try:
        image = page.render(scale=DPI / 72).to_pil()
    finally:
        page.close()
    with tempfile.TemporaryDirectory() as tmp:
        png = os.path.join(tmp, "page.png")
        image.save(png)
        tsv = tesseract_tsv(png, limits.seconds)
    return words_to_lines(tsv, DPI / 72, index + 1)
