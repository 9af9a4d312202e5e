"""Pictures the stages draw, and the font that draws Chinese text in them."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from kexue.io import atomic_path

KNOWN_CJK_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # Debian fonts-wqy-microhei
                   "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")  # fonts-noto-cjk


def cjk_font() -> Path:
    """A font file with Chinese glyphs: fontconfig's first match for :lang=zh (sorted by path),
    else a known Debian font path."""
    try:
        listing = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True,
                                 check=False).stdout
    except FileNotFoundError:  # no fontconfig
        listing = ""
    files = sorted(line.split(":")[0].strip() for line in listing.splitlines() if line.strip())
    files = files or [f for f in KNOWN_CJK_FONTS if Path(f).is_file()]
    if not files:
        raise FileNotFoundError("no font with Chinese glyphs found (fc-list :lang=zh is empty): "
                                "install one, e.g. `apt-get install fonts-wqy-microhei` "
                                "(`make setup` does)")
    return Path(files[0])


def headline_table_png(rows: Sequence[dict], path: str | Path, font: str | Path) -> None:
    """Headline examples as a picture: per row (``headline``, ``generated``, ``rougeL``, ``beam``)
    the real headline, kexue's and its ROUGE-L, and the beam search's alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.font_manager import FontProperties

    prop, bold = FontProperties(fname=str(font), size=10), FontProperties(fname=str(font), size=10,
                                                                            weight="bold")
    height = 0.6 + 0.32 * (len(rows) + 1)
    fig = plt.figure(figsize=(11, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 11)
    ax.set_ylim(len(rows) + 1.5, 0)
    ax.axis("off")
    columns = ((0.15, "#"), (0.5, "real headline"), (3.9, "kexue headline"), (7.0, "ROUGE-L"),
               (7.9, "beam search alone"))
    for x, title in columns:
        ax.text(x, 0.8, title, fontproperties=bold, va="center")
    for i, row in enumerate(rows, 1):
        y = i + 0.8
        if i % 2:
            ax.axhspan(y - 0.5, y + 0.5, color="0.94", zorder=0)
        for (x, _), value in zip(columns, (str(i), row["headline"], row["generated"],
                                            f"{row['rougeL']:.2f}", row["beam"]), strict=True):
            ax.text(x, y, value, fontproperties=prop, va="center")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
