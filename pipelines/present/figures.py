"""Charts as pictures for meetings: the same Altair spec as on screen, rendered by vl-convert at a
fixed 16:9 size with a title, a subtitle (wave, filters), a data-source line and the generation time.

Rendering holds the GIL for hundreds of milliseconds (vl-convert 1.9), so rendered bytes are cached
on the spec; the footer is drawn afterwards with Pillow in the same CJK font, so a new generation
time does not cost a new render.
"""

from __future__ import annotations

import functools
import io
import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import altair as alt
import vl_convert
from PIL import Image, ImageDraw, ImageFont

from pipelines.core.clock import beijing, beijing_now
from pipelines.present.charts import FONT

SIZE = (1920, 1080)
SOURCE = "数据来源：省统计局禁毒工作专项调查测评"
FOOTER_HEIGHT = 44
FONT_FILES = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
              "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


class FigureError(RuntimeError):
    """The picture could not be made (no CJK font installed, or the spec failed to render)."""


@functools.cache
def font_file() -> Path:
    """The file of the named CJK font (fontconfig's answer, else the Debian paths)."""
    if shutil.which("fc-match"):
        found = subprocess.run(["fc-match", "-f", "%{file}", FONT], capture_output=True,
                               text=True, check=False).stdout.strip()
        if found and ("CJK" in found or "wqy" in found):
            return Path(found)
    for candidate in FONT_FILES:
        if Path(candidate).exists():
            return Path(candidate)
    raise FigureError(f"未找到中文字体“{FONT}”：请安装 fonts-noto-cjk（make run 会自动安装）。")


@functools.cache
def _pillow_font(size: int) -> ImageFont.FreeTypeFont:
    """The face of FONT inside the collection (a .ttc holds JP, KR, SC, TC … faces)."""
    path = str(font_file())
    for index in range(16):
        try:
            face = ImageFont.truetype(path, size, index=index)
        except OSError:
            break
        if face.getname()[0] == FONT:
            return face
    return ImageFont.truetype(path, size)


def fixed_size_spec(chart: alt.TopLevelMixin | dict, width: int, height: int, *,
                    title: str | None = None, subtitle: list[str] | None = None,
                    text_size: int = 16) -> dict:
    """The chart's Vega-Lite spec fitted (axes, legends and title included) to width × height."""
    spec = chart if isinstance(chart, dict) else chart.to_dict()
    spec = json.loads(json.dumps(spec))        # a private copy
    spec["width"], spec["height"] = width, height
    spec["autosize"] = {"type": "fit", "contains": "padding"}
    spec["padding"] = {"left": 24, "right": 24, "top": 16, "bottom": 8}
    if title is not None:
        spec["title"] = {"text": title, "subtitle": subtitle or [], "fontSize": 30,
                         "subtitleFontSize": 20, "subtitleColor": "#555555", "font": FONT,
                         "subtitleFont": FONT, "anchor": "start", "offset": 14}
    config = spec.setdefault("config", {})
    config.setdefault("axis", {}).update({"labelFontSize": text_size,
                                          "titleFontSize": text_size + 2})
    config.setdefault("legend", {}).update({"labelFontSize": text_size,
                                            "titleFontSize": text_size + 1})
    config.setdefault("title", {}).setdefault("fontSize", text_size + 4)
    config.setdefault("text", {})["fontSize"] = text_size
    rows = _discrete_rows(spec)
    if rows:     # one label per band: shrink the labels until they no longer overlap
        step = height / rows
        config.setdefault("axisY", {})["labelFontSize"] = max(7, min(text_size, int(step * 0.8)))
    return spec


def _discrete_rows(spec: dict) -> int:
    """How many categories the y axis has (0 when it is not a category axis)."""
    layers = spec.get("layer") or [spec]
    for layer in layers:
        for inner in layer.get("layer") or [layer]:
            y = (inner.get("encoding") or {}).get("y") or {}
            if y.get("type") == "nominal" and isinstance(y.get("sort"), list):
                return len(y["sort"])
    return 0


@functools.lru_cache(maxsize=128)
def _render(spec_json: str, scale: float) -> bytes:
    try:
        return vl_convert.vegalite_to_png(json.loads(spec_json), scale=scale)
    except Exception as exc:      # vl-convert raises ValueError with a JavaScript message
        raise FigureError(f"图表渲染失败：{exc}") from exc


def chart_png(chart: alt.TopLevelMixin | dict, width: int, height: int, *, scale: float = 1.0,
              title: str | None = None, subtitle: list[str] | None = None,
              text_size: int = 16) -> bytes:
    """PNG of the chart alone at exactly (width × scale) × (height × scale) pixels (cached)."""
    spec = fixed_size_spec(chart, width, height, title=title, subtitle=subtitle,
                           text_size=text_size)
    png = _render(json.dumps(spec, sort_keys=True, ensure_ascii=False), float(scale))
    return _exact_size(png, int(width * scale), int(height * scale))


def _exact_size(png: bytes, width: int, height: int) -> bytes:
    """Charts that cannot be fitted (concatenations) are scaled down and centred on white."""
    image = Image.open(io.BytesIO(png))
    if image.size == (width, height):
        return png
    image = image.convert("RGB")
    image.thumbnail((width, height), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (width, height), "white")
    canvas.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    return _png_bytes(canvas)


def _png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def footer_text(source: str = SOURCE, generated: datetime | None = None) -> tuple[str, str]:
    stamp = (beijing(generated) if generated else beijing_now()).strftime("%Y-%m-%d %H:%M")
    return source, f"生成时间：{stamp}（北京时间）"


def figure_png(chart: alt.TopLevelMixin | dict, *, title: str, subtitle: list[str] | str = (),
               source: str = SOURCE, generated: datetime | None = None,
               scale: float = 1.0) -> bytes:
    """A 16:9 picture for slides: 1920×1080 (3840×2160 at scale 2) with title, subtitle, the
    chart as on screen, and a footer line with the data source and the generation time."""
    lines = [subtitle] if isinstance(subtitle, str) else list(subtitle)
    width, height = SIZE
    body = chart_png(chart, width, height - FOOTER_HEIGHT, scale=scale, title=title,
                     subtitle=lines)
    canvas = Image.new("RGB", (int(width * scale), int(height * scale)), "white")
    canvas.paste(Image.open(io.BytesIO(body)).convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(canvas)
    face = _pillow_font(int(18 * scale))
    left, right = footer_text(source, generated)
    baseline = int((height - FOOTER_HEIGHT / 2) * scale)
    draw.line([(24 * scale, (height - FOOTER_HEIGHT) * scale),
               ((width - 24) * scale, (height - FOOTER_HEIGHT) * scale)], fill="#cccccc",
              width=max(1, int(scale)))
    draw.text((24 * scale, baseline), left, font=face, fill="#555555", anchor="lm")
    draw.text(((width - 24) * scale, baseline), right, font=face, fill="#555555", anchor="rm")
    return _png_bytes(canvas)


def spec_text(chart: alt.TopLevelMixin | dict) -> set[str]:
    """Every string in the spec (titles, labels, data values): a superset of the text drawn."""
    spec = chart if isinstance(chart, dict) else chart.to_dict()
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, str):
            found.add(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                found.add(str(key))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return found
