"""Report: findings -> a radiology-style Markdown text and a self-contained HTML page.

`template` writes the deterministic text; `llm` optionally rewords its summary (local GGUF or an
OpenAI-compatible endpoint); `guard` checks any such text against the findings; `textstats` measures
lexical diversity and readability; `html` builds the page; `make` ties them together.
"""

from voxcause.report.guard import check_text
from voxcause.report.make import make_report
from voxcause.report.template import narrative, render_markdown
from voxcause.report.textstats import text_stats

__all__ = ["check_text", "make_report", "narrative", "render_markdown", "text_stats"]
