"""Write a run's report: Markdown (images as files) or self-contained HTML (images inlined).

A report is a title, a description, then sections; a section holds text,
tables (DataFrames or preformatted text) and figures (PNG files).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Section:
    """One heading of the report with its content, in order."""

    title: str
    items: list[tuple[str, object]] = field(default_factory=list)

    def text(self, text: str) -> Section:
        self.items.append(("text", text))
        return self

    def pre(self, text: str) -> Section:
        self.items.append(("pre", text))
        return self

    def table(self, df: pd.DataFrame, caption: str = "") -> Section:
        self.items.append(("table", (df, caption)))
        return self

    def figure(self, path: Path, caption: str = "") -> Section:
        self.items.append(("figure", (Path(path), caption)))
        return self


def markdown_table(df: pd.DataFrame, digits: int = 4) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (index included when named or non-default)."""
    show_index = not isinstance(df.index, pd.RangeIndex)
    frame = df.reset_index() if show_index else df
    if isinstance(frame.columns, pd.MultiIndex):
        frame = frame.copy()
        frame.columns = [" ".join(str(c) for c in col if str(c)) for col in frame.columns]

    def cell(v: object) -> str:
        if isinstance(v, float):
            return "" if pd.isna(v) else f"{v:.{digits}g}"
        return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v).replace("|", "\\|")

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def write_markdown(path: Path, title: str, description: str, sections: list[Section]) -> Path:
    """Write ``report.md``; figures are referenced relative to the report."""
    out = [f"# {title}", "", description.strip(), ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for kind, item in s.items:
            if kind == "text":
                out += [str(item), ""]
            elif kind == "pre":
                out += ["```", str(item), "```", ""]
            elif kind == "table":
                df, caption = item
                out += ([f"*{caption}*", ""] if caption else []) + [markdown_table(df), ""]
            else:
                fig, caption = item
                rel = Path(fig).resolve().relative_to(path.parent.resolve())
                out += [f"![{caption}]({rel.as_posix()})", ""]
    path.write_text("\n".join(out))
    return path


def write_html(path: Path, title: str, description: str, sections: list[Section]) -> Path:
    """Write a self-contained ``report.html`` (figures inlined as base64 PNG)."""
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(description.strip())}</p>"]
    for s in sections:
        body.append(f"<h2>{html.escape(s.title)}</h2>")
        for kind, item in s.items:
            if kind == "text":
                body.append(f"<p>{html.escape(str(item))}</p>")
            elif kind == "pre":
                body.append(f"<pre>{html.escape(str(item))}</pre>")
            elif kind == "table":
                df, caption = item
                cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
                body.append(df.to_html(float_format=lambda v: f"{v:.4g}", na_rep="").replace(">\n", ">", 1) + cap)
            else:
                fig, caption = item
                data = base64.b64encode(Path(fig).read_bytes()).decode()
                body.append(
                    f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:0.9em}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "img{max-width:100%}pre{background:#f6f6f6;padding:0.5em;overflow-x:auto}"
    )
    path.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
    return path
